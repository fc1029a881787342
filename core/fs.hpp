// Small, careful file helpers used by every tier.
#pragma once
#include <cstdint>
#include <string>

namespace xmodal {

// Reads a whole regular file (refuses FIFOs, devices, directories; follows symlinks and checks
// the target). Throws InputError(path, ...) if missing, unreadable, not a regular file, or
// larger than max_bytes.
std::string read_file(const std::string& path, uint64_t max_bytes = 1ull << 30);

// Throws InputError(path, ...) unless path names an existing regular file.
void require_regular_file(const std::string& path);

// Writes content to path atomically: a temporary file in the same folder, fsync, rename.
// A failed or short write (e.g. disk full) throws InputError(path, strerror) and leaves any
// previous file untouched.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace xmodal
