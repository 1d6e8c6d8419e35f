// ttrpc_test_server: our ttrpc server with the test-only echo service, for the Go interop client
// and the benchmark. Prints "ready" once listening; SIGTERM shuts down gracefully.
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <thread>

#include "common/base/go_flags.h"
#include "tests/support/echo_service.h"

int main(int argc, char** argv) {
  CLI::App app{"ttrpc test server (ttrpctest.Test/Echo)"};
  std::string socket;
  unsigned threads = 1;
  app.add_option("--unix", socket, "socket path")->required();
  app.add_option("--threads", threads, "I/O threads")->check(CLI::Range(1, 64));
  auto args = pp::NormalizeGoFlags(argc, argv);
  std::vector<const char*> cargs;
  for (const auto& a : args) cargs.push_back(a.c_str());
  CLI11_PARSE(app, static_cast<int>(cargs.size()), cargs.data());

  asio::io_context io(static_cast<int>(threads));
  pp::ttrpc::Server::Options options;
  options.single_threaded = threads == 1;
  pp::ttrpc::Server server(io.get_executor(), options);
  pp::testing::RegisterEchoService(server);
  if (auto ok = server.ListenUnix(socket, 0600); !ok) {
    std::cerr << ok.error().ToString() << "\n";
    return 1;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int) {
    if (ec) return;
    asio::co_spawn(io, server.Shutdown(std::chrono::seconds(5)), asio::detached);
  });
  std::cout << "ready" << std::endl;
  std::vector<std::jthread> workers;
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  return 0;
}
