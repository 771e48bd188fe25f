#include "common/grpc_server.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

// Calls `method` with a serialized request on a real channel; returns the response bytes.
absl::StatusOr<std::string> CallRaw(const std::string& address, const std::string& method,
                                    const std::string& request) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
    std::lock_guard<std::mutex> l(mu);
    status = std::move(s);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  std::vector<grpc::Slice> slices;
  (void)out.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

TEST(GrpcServerTest, HealthServiceAnswersServing) {
  auto served = ServeGrpc("127.0.0.1:0", {});
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->address, absl::StrCat("127.0.0.1:", served->port));
  // grpc.health.v1.HealthCheckRequest{service: ""} is empty on the wire; the answer is
  // HealthCheckResponse{status: SERVING (1)}: field 1, varint 1.
  auto answer = CallRaw(served->address, "/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(*answer, std::string("\x08\x01", 2));
  served->server->Shutdown();
}

TEST(GrpcServerTest, ReflectionListsServices) {
  auto served = ServeGrpc("127.0.0.1:0", {});
  ASSERT_TRUE(served.ok()) << served.status();
  // ServerReflectionRequest{list_services: ""} (field 7, empty string) over the bidi stream.
  auto channel = grpc::CreateChannel(served->address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice request(std::string("\x3a\x00", 2));
  grpc::ByteBuffer in(&request, 1), out;
  call->WriteLast(in, grpc::WriteOptions(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->Read(&out, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  (void)out.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  served->server->Shutdown();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST(GrpcServerTest, SecondServerOnAPortInUseFailsWithAddressInUse) {
  auto first = ServeGrpc("127.0.0.1:0", {});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ServeGrpc(first->address, {});
  ASSERT_FALSE(second.ok()) << "a second server bound " << first->address << ": SO_REUSEPORT is on";
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(
      std::string(second.status().message()),
      HasSubstr(absl::StrCat("gRPC: cannot listen on ", first->address, ": address in use")));
  first->server->Shutdown();
}

TEST(GrpcServerTest, BadAddressIsInvalidArgument) {
  auto served = ServeGrpc("nowhere", {});
  EXPECT_EQ(served.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cybersyn
