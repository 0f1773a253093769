// tests/support/temp_dir.h — a private directory under /tmp for one test, removed with it.
#pragma once

#include <errno.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace chatd::test {

struct TempDir {
  std::string path;
  // `prefix` names the test in the directory's name: /tmp/chatd-<prefix>-XXXXXX.
  explicit TempDir(const std::string& prefix = "unit-test") {
    std::string tmpl = "/tmp/chatd-" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr)
      throw std::filesystem::filesystem_error("mkdtemp", tmpl, std::error_code(errno, std::generic_category()));
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace chatd::test
