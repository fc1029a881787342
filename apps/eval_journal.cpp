// The eval journal (see apps/eval_journal.hpp).
#include "apps/eval_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"
#include "core/fs.hpp"

namespace xmodal::app {

using Json = nlohmann::json;

JournalContents read_journal(const std::string& path) {
  JournalContents c;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return c;
    throw InputError(path, std::string("cannot read the journal: ") + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    if (st.st_size == 0) return c;  // e.g. /dev/full or /dev/null: nothing recorded yet
    throw InputError(path, "the journal is not a regular file");
  }
  const std::string text = read_file(path, 16ull << 30);
  c.file_bytes = text.size();
  size_t start = 0, line_no = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;  // torn last line
    ++line_no;
    const std::string line = text.substr(start, nl - start);
    start = nl + 1;
    c.valid_bytes = start;
    if (line.empty()) continue;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::exception&) {
      throw InputError(path, "line " + std::to_string(line_no) + " is not valid JSON (not an xmodal eval journal?)");
    }
    if (!j.is_object()) throw InputError(path, "line " + std::to_string(line_no) + " is not a JSON object");
    if (c.header.is_null()) {
      if (!j.contains("xmodal_eval_journal"))
        throw InputError(path, "line 1 is not an xmodal eval journal header");
      c.header = std::move(j);
    } else {
      c.records.push_back(std::move(j));
    }
  }
  return c;
}

Journal::Journal(const std::string& path, const Json& header, bool resume, std::vector<Json>* done) : path_(path) {
  JournalContents c = read_journal(path);
  const bool existing = !c.header.is_null();
  if (!existing && c.file_bytes > 0 && c.valid_bytes == 0 && !resume)
    throw UsageError(path + " exists (a torn first line); pass --resume or remove it", "--journal");
  if (existing && !resume)
    throw UsageError(path + " already holds " + std::to_string(c.records.size()) +
                         " results; pass --resume to continue it, or remove it to start again",
                     "--journal");
  if (existing) {
    for (auto it = header.begin(); it != header.end(); ++it)
      if (!c.header.contains(it.key()) || c.header[it.key()] != it.value())
        throw UsageError(path + " was written with a different " + it.key() + " (" +
                             (c.header.contains(it.key()) ? c.header[it.key()].dump() : std::string("none")) +
                             ", now " + it.value().dump() + "); use another --journal",
                         "--resume");
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError(path, std::string("cannot open the journal: ") + std::strerror(errno));
  struct stat st {};
  const bool regular = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
  if (regular && c.valid_bytes < c.file_bytes) {
    // Drop the torn tail left by a killed run (or a torn header: start the file again).
    const size_t keep = existing ? c.valid_bytes : 0;
    if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0)
      throw InputError(path, std::string("cannot cut the torn last line: ") + std::strerror(errno));
  }
  if (existing) {
    if (done) *done = std::move(c.records);
    return;
  }
  write_all(header.dump() + "\n");
  if (regular) {  // make the new file's folder entry durable too
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::write_all(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw InputError(path_, std::string("write failed: ") + std::strerror(errno));
    }
    if (n == 0) throw InputError(path_, "write failed: wrote 0 bytes");
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS)  // EINVAL: a pipe or device that cannot sync
    throw InputError(path_, std::string("fsync failed: ") + std::strerror(errno));
}

void Journal::append(const std::vector<Json>& records) {
  if (records.empty()) return;
  std::string bytes;
  for (const auto& r : records) bytes += r.dump() + "\n";
  write_all(bytes);
}

void Journal::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw InputError(path_, std::string("close failed: ") + std::strerror(errno));
}

}  // namespace xmodal::app
