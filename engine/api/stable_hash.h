// A hash that is the same on every machine and in every version, for what
// must be reproducible from a request alone: a batch request's seed from its
// custom_id, the ids of the tool calls in its answer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dsv4::api {

// FNV-1a over the bytes, then splitmix64's finalizer mixed with `salt`.
uint64_t StableHash(std::string_view text, uint64_t salt = 0);

// 16 lowercase hex digits.
std::string Hex64(uint64_t value);

}  // namespace dsv4::api
