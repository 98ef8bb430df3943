// Sends arbitrary bytes as a unary request (grpc::GenericStub), so tests can
// send what no generated stub would: garbage, truncated messages, invalid
// UTF-8 in string fields. Shared by the server and end-to-end tests.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace lcio::test {

// The status of calling `method` (e.g. "/lcio.v1.Offloader/Decide") on
// `target` with `bytes` as the request body; bounded by a 30 s deadline.
inline grpc::Status RawUnaryCall(const std::string& target, const std::string& method,
                                 const std::string& bytes) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) {
                   std::lock_guard<std::mutex> lock(mu);
                   result = std::move(status);
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

}  // namespace lcio::test
