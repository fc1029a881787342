// The eval journal (--journal FILE): JSON Lines, a header line with the run's settings, then one
// line per result, appended one batch at a time with a single write() and fsync(), so a run
// killed at any moment (kill -9, power loss) leaves every finished batch on disk and at most one
// torn last line, which the next --resume drops. Write, fsync and close errors (a full disk)
// are InputErrors naming the file, never silent truncation.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace xmodal::app {

struct JournalContents {
  nlohmann::json header;                // null when the file is missing or empty
  std::vector<nlohmann::json> records;  // complete lines after the header
  size_t valid_bytes = 0;               // bytes up to the end of the last complete line
  size_t file_bytes = 0;
};

// Reads a journal. A last line without '\n' (a torn write) is ignored; any other line that is
// not a JSON object is an InputError naming the file and the line number.
JournalContents read_journal(const std::string& path);

class Journal {
 public:
  // Opens path for appending. An existing non-empty journal needs resume = true (else
  // UsageError), must have a header equal to `header` (else UsageError naming the first
  // different setting), and its records are returned in *done; a torn last line is cut off.
  // A new journal gets the header line (written and fsynced, with the folder entry).
  Journal(const std::string& path, const nlohmann::json& header, bool resume, std::vector<nlohmann::json>* done);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  void append(const std::vector<nlohmann::json>& records);  // one line each; write + fsync
  void close();                                             // checks close()'s result
  const std::string& path() const { return path_; }

 private:
  void write_all(const std::string& bytes);
  std::string path_;
  int fd_ = -1;
};

}  // namespace xmodal::app
