#include "simd/matrix_engine.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "simd/bf16_weights.h"

namespace dsv4 {
namespace {

using dnnl::memory;
using Dims = memory::dims;

const dnnl::engine& Cpu() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// bf16 [m x k] (row stride k) by bf16 [k x n] stored as n rows of k (W's own
// layout) into f32 [m x n] with row stride ldc.
dnnl::matmul::primitive_desc Bf16MatMulDesc(int64_t m, int64_t k, int64_t n, int64_t ldc) {
  const memory::desc src({m, k}, memory::data_type::bf16, Dims{k, 1});
  const memory::desc weights({k, n}, memory::data_type::bf16, Dims{1, k});
  const memory::desc dst({m, n}, memory::data_type::f32, Dims{ldc, 1});
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), Cpu());
}

std::string DetectImplementation() {
  try {
    return Bf16MatMulDesc(64, 256, 256, 256).impl_info_str();
  } catch (const dnnl::error&) {
    return "";
  }
}

std::string UnitOf(const std::string& impl) {
  if (impl.find("amx") != std::string::npos) return "AMX-BF16";
  if (impl.find("bf16") != std::string::npos) return "AVX512-BF16";
  return "";
}

// Weight rows decoded per oneDNN call: bounds the bf16 copy (~8 MiB) for any
// matrix, the LM head included.
int64_t PanelRows(int64_t cols) {
  const int64_t rows = (int64_t{8} << 20) / (2 * std::max<int64_t>(cols, 1));
  return std::max<int64_t>(64, rows / 64 * 64);
}

// Grows only, so a long prefill reuses the pages it touched once.
uint16_t* Scratch(std::vector<uint16_t>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(size);
  return buffer.data();
}

}  // namespace

const std::string& Bf16MatMulImplementation() {
  static const std::string impl = DetectImplementation();
  return impl;
}

const std::string& Bf16MatrixUnit() {
  static const std::string unit = UnitOf(Bf16MatMulImplementation());
  return unit;
}

void MatMulBf16(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
  if (!ExactInBf16(w.format)) throw std::invalid_argument("MatMulBf16: the weights are not exact in bf16");
  if (Bf16MatrixUnit().empty()) throw std::runtime_error("MatMulBf16: oneDNN has no bf16 matmul for this CPU");
  if (batch <= 0 || w.rows <= 0) return;
  thread_local std::vector<uint16_t> src_buffer, weight_buffer;
  const int64_t k = w.cols, panel = std::min(w.rows, PanelRows(k));
  uint16_t* src = Scratch(src_buffer, batch * k);
  uint16_t* weights = Scratch(weight_buffer, panel * k);
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < batch; ++m) RoundToBf16(x + m * k, k, src + m * k);
  try {
    dnnl::stream stream(Cpu());
    for (int64_t first = 0; first < w.rows; first += panel) {
      const int64_t n = std::min(panel, w.rows - first);
      const int threads = omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int64_t part = 0; part < threads; ++part) {
        const int64_t begin = first + n * part / threads, end = first + n * (part + 1) / threads;
        DecodeRowsBf16(w, begin, end, weights + (begin - first) * k);
      }
      const auto desc = Bf16MatMulDesc(batch, k, n, w.rows);
      memory src_mem(desc.src_desc(), Cpu(), src), weight_mem(desc.weights_desc(), Cpu(), weights),
          dst_mem(desc.dst_desc(), Cpu(), y + first);
      dnnl::matmul(desc).execute(stream, {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, weight_mem},
                                          {DNNL_ARG_DST, dst_mem}});
      stream.wait();
    }
  } catch (const dnnl::error& e) {
    throw std::runtime_error("oneDNN bf16 matmul " + std::to_string(batch) + "x" + std::to_string(k) + "x" +
                             std::to_string(w.rows) + ": " + e.what());
  }
}

double Bf16MatMulPeakGflops(int64_t m, int64_t k, int64_t n, int repeats) {
  if (Bf16MatrixUnit().empty()) return 0;
  const memory::desc src({m, k}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc weights({k, n}, memory::data_type::bf16, memory::format_tag::any);
  const memory::desc dst({m, n}, memory::data_type::f32, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc desc(dnnl::matmul::desc(src, weights, dst), Cpu());
  memory src_mem(desc.src_desc(), Cpu()), weight_mem(desc.weights_desc(), Cpu()), dst_mem(desc.dst_desc(), Cpu());
  // 0x3F80 = 1.0 in bf16: finite inputs, so no slow special values.
  std::fill_n(static_cast<uint16_t*>(src_mem.get_data_handle()), m * k, 0x3F80);
  std::fill_n(static_cast<uint16_t*>(weight_mem.get_data_handle()), desc.weights_desc().get_size() / 2, 0x3F80);
  const dnnl::matmul matmul(desc);
  dnnl::stream stream(Cpu());
  double best = 0;
  for (int i = 0; i <= repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    matmul.execute(stream, {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, weight_mem}, {DNNL_ARG_DST, dst_mem}});
    stream.wait();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i > 0) best = std::max(best, 2.0 * m * k * n / seconds / 1e9);  // the first run warms up
  }
  return best;
}

}  // namespace dsv4
