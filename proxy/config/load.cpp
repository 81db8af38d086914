// The loader's entry points: reading the file (bounded: a config is a regular file of at most
// max_config_file_bytes), parsing the YAML, and running the reader (reader.h). Every error is
// collected with its 1-based position and key path so `--check` and a refused reload can list
// them all at once, like a compiler. Keeps no state between calls: safe on any thread.

#include "config/load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include "config/reader.h"
#include "config/walker.h"

namespace canary::config {

namespace {

void sort_by_position(std::vector<config_error>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const config_error& a, const config_error& b) {
    return std::pair(a.line, a.col) < std::pair(b.line, b.col);
  });
}

// What a file that is not a regular one is, for the error message.
std::string file_kind(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string mib(std::uint64_t bytes) { return std::to_string(bytes / (1024 * 1024)) + " MiB"; }

// Closes the descriptor on every path out of read_bounded.
struct fd_closer {
  int fd;
  ~fd_closer() { ::close(fd); }
};

// The whole file, or the reason it is refused. Checks the kind and size of what was opened
// (fstat, not stat: no race with a rename) before reading a byte, and never reads more than the
// limit plus one byte, so a file that grows while it is read is refused, not followed.
std::string read_bounded(const std::string& path, std::string& text) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return std::generic_category().message(errno);
  fd_closer closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::generic_category().message(errno);
  if (S_ISDIR(st.st_mode)) return std::generic_category().message(EISDIR);
  if (!S_ISREG(st.st_mode))
    return file_kind(st.st_mode) + " is not a config file (a config is a regular file)";
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_config_file_bytes)
    return "the file has " + std::to_string(size) + " bytes, more than a config file may have (" +
           mib(max_config_file_bytes) + ")";
  text.resize(static_cast<std::size_t>(size) + 1);  // one more byte to see growth
  std::size_t got = 0;
  for (;;) {
    if (got == text.size()) {
      if (text.size() > max_config_file_bytes)
        return "the file grew past " + mib(max_config_file_bytes) +
               " (the most a config file may have) while it was read";
      text.resize(std::min<std::uint64_t>(text.size() * 2, max_config_file_bytes + 1));
    }
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::generic_category().message(errno);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return {};
}

}  // namespace

std::string config_error::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(col);
  out += ": ";
  if (!key_path.empty()) out += key_path + ": ";
  return out + message;
}

load_result load_string(std::string_view yaml, const std::string& file,
                        const load_options& options) {
  load_result result;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    source_pos p = to_pos(e.mark);
    result.errors.push_back({file, p.line, p.col, "", e.msg});
    return result;
  }
  walker extra(file, result.errors);
  if (docs.size() > 1)
    extra.error(docs[1].Mark(), "", "only one YAML document is allowed in a config file");
  YAML::Node root = docs.empty() ? YAML::Node() : docs.front();
  config_reader reader(file, result.errors, options);
  proxy_config cfg = reader.read(root, file);
  if (result.errors.empty())
    result.config = std::move(cfg);
  else
    sort_by_position(result.errors);
  return result;
}

load_result load_file(const std::string& path, const load_options& options) {
  std::string text;
  if (std::string why = read_bounded(path, text); !why.empty()) {
    load_result r;
    r.errors.push_back({path, 0, 0, "", "cannot read file: " + why});
    return r;
  }
  return load_string(text, path, options);
}

}  // namespace canary::config
