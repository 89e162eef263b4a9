#!/usr/bin/env python3
"""Writes a deterministic JSONL corpus of mixed text for tokenizer throughput runs.

    python3 benchmarks/make_tokenizer_corpus.py OUT.jsonl [--megabytes 6] [--seed 1]

Rows are {"kind": ..., "text": ...}. The mix (by bytes, roughly): English prose
40 %, source code 25 %, Chinese/Japanese 15 %, digits and tables 10 %, other
scripts, emoji and odd white space 10 %. Prose and CJK are assembled from
built-in word lists; code comes from the Python standard library's own sources
(real code, present wherever python3 is), falling back to generated code.
Nothing is downloaded, and the corpus is not committed: generate it when needed.
"""
import argparse
import json
import os
import random
import sysconfig

ENGLISH = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you "
    "were her she there been one all we their has would when if so no will can more about out up them into only "
    "could time new some these two may first then do any like my now over such our man me even most made after also "
    "did many before must through back years where much your way well down should because each just those people "
    "how too little state good very make world still own see men work long get here between both life being under "
    "never day same another know while last might us great old year off come since against go came right used take "
    "three model token engine memory cache thread layer attention expert weight matrix vector kernel throughput "
    "latency benchmark compiler function variable pointer structure algorithm network server request response "
    "history science language mountain river ocean forest village city market government education research"
).split()

CHINESE = [
    "今天天气很好，我们去公园散步吧。", "机器学习是人工智能的一个重要分支。", "请把这份文件翻译成英文。",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。", "这个模型的推理速度比上一代快了三倍。",
    "我们需要在周五之前完成测试并提交报告。", "长江是亚洲第一长河，全长约六千三百公里。",
    "他说：“明天见！”然后就走了。", "深度学习需要大量的数据和计算资源。", "请问附近有没有地铁站？",
]
JAPANESE = [
    "今日はとても良い天気ですね。", "東京タワーは一九五八年に完成しました。", "この本はとても面白かったです。",
    "明日の会議は午後三時からです。", "カタカナとひらがなを練習しましょう。", "新しいプログラムをテストしています。",
]
OTHER = [
    "Привет, как дела? Это тест токенизатора.", "Γειά σου κόσμε! Καλημέρα.", "مرحبا بالعالم، هذا اختبار.",
    "नमस्ते दुनिया, यह एक परीक्षण है।", "안녕하세요, 세계! 토크나이저 테스트입니다.", "Xin chào thế giới, đây là bài kiểm tra.",
    "Ünïcödé çömbïnïng: e\u0301 a\u0308 n\u0303", "Emoji: 😀🎉🚀👍🏽 👨‍👩‍👧 ❤️ 🇫🇷",
    "tabs\tand\u00a0nbsp\u3000ideographic\u2028line\u2029para\u0085nel", "שלום עולם", "สวัสดีชาวโลก",
]

CODE_TEMPLATE = """def {name}({arg}, limit={n}):
    \"\"\"Return the {word} of {arg} up to limit.\"\"\"
    total = 0
    for i in range(limit):
        if i % {m} == 0:
            total += {arg}[i] * {n}
    return total  # {word}
"""


def prose(rng):
    sentences = []
    for _ in range(rng.randint(2, 8)):
        words = [rng.choice(ENGLISH) for _ in range(rng.randint(5, 20))]
        words[0] = words[0].capitalize()
        if rng.random() < 0.2:
            words.insert(rng.randint(1, len(words) - 1), "\"%s\"" % rng.choice(ENGLISH))
        sentences.append(" ".join(words) + rng.choice([".", ".", ".", "?", "!", ";"]))
    return " ".join(sentences) + ("\n\n" if rng.random() < 0.3 else "")


def code_files():
    root = sysconfig.get_paths().get("stdlib", "")
    names = sorted(n for n in os.listdir(root) if n.endswith(".py")) if os.path.isdir(root) else []
    return [os.path.join(root, n) for n in names]


def code(rng, files):
    if files:
        with open(rng.choice(files), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        start = rng.randrange(max(1, len(lines)))
        return "\n".join(lines[start:start + rng.randint(10, 60)])
    return CODE_TEMPLATE.format(name=rng.choice(ENGLISH) + "_" + rng.choice(ENGLISH), arg=rng.choice(ENGLISH),
                                n=rng.randint(1, 10000), m=rng.randint(2, 9), word=rng.choice(ENGLISH))


def cjk(rng):
    parts = [rng.choice(CHINESE if rng.random() < 0.7 else JAPANESE) for _ in range(rng.randint(2, 10))]
    if rng.random() < 0.3:
        parts.append("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(5, 40))))
    return "".join(parts)


def digits(rng):
    rows = []
    for _ in range(rng.randint(3, 15)):
        rows.append("| %d | %.3f | %s | %d%% | 20%02d-%02d-%02d |" % (
            rng.randint(0, 10 ** rng.randint(1, 12)), rng.uniform(-1e4, 1e4), rng.choice(ENGLISH),
            rng.randint(0, 100), rng.randint(0, 30), rng.randint(1, 12), rng.randint(1, 28)))
    return "\n".join(rows)


def other(rng):
    return " ".join(rng.choice(OTHER) for _ in range(rng.randint(1, 6)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--megabytes", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    files = code_files()
    kinds = [("prose", 40), ("code", 25), ("cjk", 15), ("digits", 10), ("other", 10)]
    makers = {"prose": prose, "code": lambda r: code(r, files), "cjk": cjk, "digits": digits, "other": other}
    target = int(args.megabytes * 1e6)
    written = 0
    with open(args.out, "w", encoding="utf-8") as out:
        while written < target:
            kind = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
            line = json.dumps({"kind": kind, "text": makers[kind](rng)}, ensure_ascii=False) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
    print("%s: %d bytes" % (args.out, written))


if __name__ == "__main__":
    main()
