// Default options and suppressions of the sanitizer builds (CYBERSYN_SANITIZE=address|thread,
// CYBERSYN_FUZZ), compiled into every test and binary of those builds so that ctest, a test run
// by hand and a child `cybersyn` process started by a test all behave the same. The
// environment (ASAN_OPTIONS, ...) still overrides these.
//
// Suppressions are only for third-party code we cannot fix; each says why. Project code is
// never suppressed: fix it.

extern "C" {

// A report fails the test (abort, non-zero exit); leaks fail it too.
// detect_stack_use_after_return costs too much memory with many threads (gRPC, librdkafka).
const char* __asan_default_options() {
  return "abort_on_error=1:detect_leaks=1:strict_string_checks=1:"
         "check_initialization_order=1:detect_stack_use_after_return=0";
}

const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

const char* __tsan_default_options() {
  // Not halt_on_error: one run lists every race; the process still exits 66 if any was found.
  return "second_deadlock_stack=1:history_size=4";
}

const char* __lsan_default_suppressions() { return ""; }

// RocksDB (Debian's librocksdb.a, not instrumented): writers from several threads meet in its
// group commit, where the leader copies the followers' batches into the WAL and memtable; the
// hand-off is through RocksDB's own atomics, which TSan cannot see, so each copy looked like a
// race with the follower that built the batch. Every frame named here is RocksDB's; none calls
// back into our code (we register no comparator, merge operator or listener).
// librdkafka (not instrumented) frees a topic's rwlock once its own atomic refcount drops, which
// TSan cannot see; gRPC hands its buffers between its threads under its own (uninstrumented)
// absl mutexes. called_from_lib ignores only the memory effects of the libc calls (memcpy,
// new/delete, ...) these libraries make themselves, as their own loads and stores are not checked
// either; their locking and the callbacks into our code they run are still checked.
const char* __tsan_default_suppressions() {
  return "called_from_lib:librdkafka.so.1\n"
         "called_from_lib:libgrpc.so.29\n"
         "called_from_lib:libgrpc++.so.1.51\n"
         "called_from_lib:libgpr.so.29\n"
         // OpenSSL (not instrumented), under gRPC's TLS and the HTTPS endpoints: gRPC hands its
         // TLS buffers between its threads, and OpenSSL frees keys and contexts on its own atomic
         // refcounts; TSan saw neither (hundreds of memcpy/free reports from libssl/libcrypto in
         // TlsE2eTest and its `cybersyn` children). As above: only the libc calls they make.
         "called_from_lib:libssl.so.3\n"
         "called_from_lib:libcrypto.so.3\n"
         // absl's string functions (not instrumented) copy, with memcpy, the strings gRPC hands
         // between its threads (StrCat on a gRPC thread of a string libgrpc built on the caller's:
         // TlsE2eTest, 2 runs of 3). Their own loads are unchecked anyway; this drops the memcpy.
         "called_from_lib:libabsl_strings.so.20220623\n"
         "race:rocksdb::WriteBatchInternal::\n"
         "race:rocksdb::WritableFileWriter::\n"
         "race:rocksdb::PosixWritableFile::\n"
         "race:rocksdb::MemTable::\n"
         "race:BytewiseComparatorImpl::Compare\n"
         // gRPC's connection setup builds strings and absl::Status payloads on one of its
         // threads and reads or frees them on another, handed over by its own uninstrumented
         // absl synchronisation (seen in GatewayTest.GrpcOkMeansOnDisk...): every frame in
         // gRPC or in the absl libraries it calls into.
         "race:grpc_tcp_client_create_from_prepared_fd\n"
         "race:grpc_tcp_create\n"
         "race:grpc_core::ResourceQuota::Default\n"
         "race:libabsl_status.so\n"
         "race:libabsl_cord.so\n"
         "race:absl::*::status_internal::\n"
         "race:absl::*::time_internal::cctz::\n"
         "race:libabsl_time_zone.so\n"
         // Lazily built singletons of uninstrumented libraries, guarded by a function-local
         // static whose fast path (an acquire load inside the library) TSan cannot see, so the
         // first use on one thread looked like a race with a later use on another: the frames
         // name the construction. spdlog's registry (default logger, built by the first
         // spdlog::info/warn/... of the process; seen in the gateway child of FullDiskTest) and
         // protobuf's generated descriptor pool (built by the first *_Name() of an enum; seen in
         // AlerterE2eTest: the alerter's loop and a gRPC handler thread).
         "race:spdlog::details::registry::registry\n"
         "race:google::protobuf::internal::AssignDescriptors\n"
         // gRPC client side (`cybersyn signals` etc.): a blocking unary call's batch is started on
         // the caller's thread (FillOps, whose strings libgrpc allocates through our instrumented
         // std::string) and read by a gRPC thread (absl::StrCat, std::string copies); the status
         // strings come back the other way, built by a gRPC thread (grpc_error_get_str) and read
         // in FinishOp once CompletionQueue::Pluck returns. Both hand-offs go through gRPC's own
         // uninstrumented atomics and absl mutexes (DemoE2eTest). Only the client op set is named,
         // not the server's (CallOpServerSendStatus), so races in our handlers are still checked;
         // what goes unchecked is a request changed by another thread while FillOps serializes it.
         "race:grpc::internal::CallOpSet<*grpc::internal::CallOpClientRecvStatus>::FillOps\n"
         // The same for a client stream's first batch (Watch: send metadata, message, close;
         // TlsE2eTest), whose op set has CallOpClientSendClose instead (also client-only).
         "race:grpc::internal::CallOpSet<*grpc::internal::CallOpClientSendClose*>::FillOps\n"
         "race:grpc::internal::CallOpClientRecvStatus::FinishOp\n";
}

}  // extern "C"
