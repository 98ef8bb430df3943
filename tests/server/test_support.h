// Helpers shared by the server unit tests and the end-to-end tests: temp
// dirs, test artifacts, an HTTP GET for /metrics and a Prometheus text
// parser, certificates made with the openssl CLI.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lcio/v1/offloader.pb.h"

namespace lcio::test {

// A plain turn of a stored conversation: a Query over the three views, each
// with `association`, at the reference budgets (30 s, 0.05 USD).
inline v1::DecideRequest QueryTurn(const std::string& conversation, int turn,
                                   double association = 0.5) {
  v1::DecideRequest r;
  r.set_conversation_id(conversation);
  r.set_turn_index(turn);
  r.set_prompt("What is on the table?");
  r.set_task("Query");
  for (int v = 0; v < 3; ++v) {
    v1::View* view = r.add_views();
    view->set_name(absl::StrCat("view", v));
    view->set_association(association);
  }
  r.mutable_budget()->set_latency_s(30);
  r.mutable_budget()->set_money_usd(0.05);
  return r;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "lcio-server-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) ? pattern : std::string();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Atomically replaces `to` with a copy of `from` (copy to a temp, rename).
inline void ReplaceFile(const std::string& from, const std::string& to) {
  const std::string temp = to + ".swap";
  std::filesystem::copy_file(from, temp, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(temp, to);
}

// GET http://127.0.0.1:port/path (with extra header lines, each ending in
// \r\n); the body, or "" on any failure. Bounded by a 5 s socket timeout.
inline std::string HttpGet(int port, const std::string& path, const std::string& headers = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = absl::StrCat(
      "GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n", headers, "\r\n");
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return "";
  }
  std::string response;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return "";
  return response.substr(body + 4);
}

// A TCP connection to 127.0.0.1:port that sends nothing (a half-open or
// stalled peer); closed on destruction.
class IdleConnection {
 public:
  explicit IdleConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ =
        fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~IdleConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

 private:
  int fd_;
  bool connected_ = false;
};

// Prometheus text format: "name{labels} value" -> value (comments skipped).
inline std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> values;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    double value = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &value)) continue;
    values[std::string(line.substr(0, space))] = value;
  }
  return values;
}

inline double Metric(const std::map<std::string, double>& metrics, const std::string& key) {
  auto it = metrics.find(key);
  return it == metrics.end() ? -1 : it->second;
}

// A CA, a server certificate for "localhost" and 127.0.0.1, and a client
// certificate, all signed by the CA, made with the openssl CLI. False when
// openssl fails.
struct Certificates {
  std::string ca_cert, ca_key, server_cert, server_key, client_cert, client_key;
  std::string other_ca_cert, other_ca_key;  // an unrelated CA
};
inline bool MakeCertificates(const std::string& dir, Certificates* certs) {
  const std::string d = dir + "/";
  certs->ca_cert = d + "ca.pem";
  certs->ca_key = d + "ca.key";
  certs->server_cert = d + "server.pem";
  certs->server_key = d + "server.key";
  certs->client_cert = d + "client.pem";
  certs->client_key = d + "client.key";
  certs->other_ca_cert = d + "other_ca.pem";
  certs->other_ca_key = d + "other_ca.key";
  WriteFile(d + "server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  const std::string quiet = " >/dev/null 2>&1";
  const std::string commands[] = {
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lcio-test-ca -keyout " +
          certs->ca_key + " -out " + certs->ca_cert,
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lcio-other-ca -keyout " +
          certs->other_ca_key + " -out " + certs->other_ca_cert,
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + certs->server_key +
          " -out " + d + "server.csr",
      "openssl x509 -req -in " + d + "server.csr -CA " + certs->ca_cert + " -CAkey " +
          certs->ca_key + " -CAcreateserial -days 2 -extfile " + d + "server.ext -out " +
          certs->server_cert,
      "openssl req -newkey rsa:2048 -nodes -subj /CN=lcio-test-client -keyout " +
          certs->client_key + " -out " + d + "client.csr",
      "openssl x509 -req -in " + d + "client.csr -CA " + certs->ca_cert + " -CAkey " +
          certs->ca_key + " -CAcreateserial -days 2 -out " + certs->client_cert,
  };
  for (const std::string& command : commands)
    if (std::system((command + quiet).c_str()) != 0) return false;
  return true;
}

// Another client certificate signed by the CA of `certs`, with CN `name`.
inline bool MakeClientCertificate(const std::string& dir, const Certificates& certs,
                                  const std::string& name, std::string* cert, std::string* key) {
  const std::string base = dir + "/" + name;
  *cert = base + ".pem";
  *key = base + ".key";
  const std::string quiet = " >/dev/null 2>&1";
  return std::system(("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + *key +
                      " -out " + base + ".csr" + quiet)
                         .c_str()) == 0 &&
         std::system(("openssl x509 -req -in " + base + ".csr -CA " + certs.ca_cert + " -CAkey " +
                      certs.ca_key + " -CAcreateserial -days 2 -out " + *cert + quiet)
                         .c_str()) == 0;
}

}  // namespace lcio::test
