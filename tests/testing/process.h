// Test support: child processes (the cybersyn binary, a Mosquitto broker) with their output in a
// log file, and waiting for a line in that log.
#ifndef CYBERSYN_TESTS_TESTING_PROCESS_H_
#define CYBERSYN_TESTS_TESTING_PROCESS_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "absl/time/clock.h"

extern char** environ;

namespace cybersyn::testing {

// Starts args[0] (a path) with stdout and stderr appended to `log`; -1 on failure.
inline pid_t SpawnLogged(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) std::cerr << "spawning " << args[0] << ": " << std::strerror(rc) << std::endl;
  return rc == 0 ? pid : -1;
}

inline std::string SlurpFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Whether `text` appeared in `log` after byte `from` within `timeout`.
inline bool WaitForLog(const std::string& log, const std::string& text, size_t from,
                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (SlurpFile(log).find(text, from) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

// The first capture group of each of `patterns` in `log` (a server's banner naming the addresses it
// bound), waiting until every pattern has matched or `timeout` passes, or `pid` (if > 0) exits; a
// pattern that never matched gives "".
inline std::vector<std::string> WaitForLogCaptures(const std::string& log,
                                                   const std::vector<std::string>& patterns,
                                                   absl::Duration timeout, pid_t pid = -1) {
  std::vector<std::string> found(patterns.size());
  for (const absl::Time deadline = absl::Now() + timeout; absl::Now() < deadline;) {
    const std::string text = SlurpFile(log);
    bool all = true;
    for (size_t i = 0; i < patterns.size(); ++i) {
      std::smatch m;
      if (found[i].empty() && std::regex_search(text, m, std::regex(patterns[i]))) found[i] = m[1];
      all = all && !found[i].empty();
    }
    if (all) break;
    if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == pid) break;  // exited: the log says why
    absl::SleepFor(absl::Milliseconds(200));
  }
  return found;
}

// A loopback TCP port that was free a moment ago (for servers that cannot bind port 0).
inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace cybersyn::testing

#endif  // CYBERSYN_TESTS_TESTING_PROCESS_H_
