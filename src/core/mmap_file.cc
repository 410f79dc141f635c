// mmap-backed read-only files.
#include "core/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace llmopt {

size_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::numeric_limits<size_t>::max();  // unknown: assume it fits
}

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path, FileLoad how) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    std::string msg = std::strerror(errno);
    ::close(fd);
    return error(path + ": cannot stat: " + msg);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return error(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  // A file that would not fit in the memory available now is mapped instead (paged in on demand).
  if (how == FileLoad::kRead && f->size_ > available_memory_bytes() / 10 * 9) how = FileLoad::kMap;
  if (f->size_ > 0 && how == FileLoad::kRead) {
    f->copy_ = HugeBuffer(f->size_);
    size_t done = 0;
    while (done < f->size_) {
      const ssize_t r = ::pread(fd, f->copy_.data() + done, f->size_ - done, static_cast<off_t>(done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        const std::string msg = r < 0 ? std::strerror(errno) : "the file shrank while it was read";
        ::close(fd);
        return error(path + ": read failed: " + msg);
      }
      done += static_cast<size_t>(r);
    }
    f->data_ = f->copy_.data();
  } else if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      std::string msg = std::strerror(errno);
      ::close(fd);
      return error(path + ": mmap failed: " + msg);
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr && copy_.data() == nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> read_text_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return error(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return error(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(path + ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace llmopt
