// Safetensors element types that DeepSeek-V4 checkpoints use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace dsv4 {

enum class DType { kBF16, kF16, kF32, kI8, kU8, kI32, kI64, kF8E4M3, kF8E8M0 };

// The safetensors dtype string ("BF16", "F8_E4M3", ...), or nullopt if unknown.
std::optional<DType> ParseDType(const std::string& name);
const char* DTypeName(DType dtype);
size_t DTypeSize(DType dtype);

}  // namespace dsv4
