// Entry point of the `dgsr` binary: dispatches to a subcommand (see subcommand.h).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "cli/subcommand.h"
#include "common/allocator.h"

namespace dgsr::cli {
namespace {

void PrintTopLevelHelp() {
  std::printf(
      "dgsr: DGSR sequential recommendation service (store, trainer, gRPC server).\n\n"
      "Usage: dgsr <subcommand> [flags] [args]\n\nSubcommands:\n");
  for (const Subcommand& s : AllSubcommands()) {
    std::printf("  %-10s %s\n", std::string(s.name).c_str(), std::string(s.summary).c_str());
  }
  std::printf(
      "\nRun `dgsr <subcommand> --help` for its flags. Every flag may also be set in the\n"
      "environment as DGSR_<FLAG_NAME> (command line wins) or read from --flagfile=FILE.\n");
}

std::string EnvName(absl::string_view flag) {
  std::string env = "DGSR_";
  for (char c : flag) env += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

void PrintSubcommandHelp(const Subcommand& cmd) {
  std::printf("dgsr %s: %s\n\n%s\n\nFlags:\n", std::string(cmd.name).c_str(),
              std::string(cmd.summary).c_str(), std::string(cmd.usage).c_str());
  for (absl::CommandLineFlag* flag : FlagsOf(cmd)) {
    std::printf("  --%s (%s; default: \"%s\") [env %s]\n", std::string(flag->Name()).c_str(),
                flag->Help().c_str(), flag->DefaultValue().c_str(),
                EnvName(flag->Name()).c_str());
  }
  std::printf("  --flagfile=FILE (read flags from FILE, one --name=value per line)\n");
}

// Environment fallback: applied before the command line is parsed, so the command line wins.
bool ApplyEnvironment(const Subcommand& cmd) {
  for (absl::CommandLineFlag* flag : FlagsOf(cmd)) {
    const char* value = std::getenv(EnvName(flag->Name()).c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "dgsr %s: bad value in $%s: %s\n", std::string(cmd.name).c_str(),
                   EnvName(flag->Name()).c_str(), error.c_str());
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h" ||
      std::string_view(argv[1]) == "help") {
    PrintTopLevelHelp();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  const auto& all = AllSubcommands();
  auto it = std::find_if(all.begin(), all.end(), [&](const Subcommand& s) { return s.name == name; });
  if (it == all.end()) {
    std::fprintf(stderr, "dgsr: unknown subcommand '%s'. Run `dgsr --help`.\n", name.c_str());
    return 2;
  }
  const Subcommand& cmd = *it;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--help" || a == "-h" || a == "--helpfull") {
      PrintSubcommandHelp(cmd);
      return 0;
    }
  }
  if (!ApplyEnvironment(cmd)) return 2;

  std::string program = absl::StrCat("dgsr ", name);
  std::vector<char*> args;
  args.push_back(program.data());
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  absl::SetProgramUsageMessage(absl::StrCat("dgsr ", name, " [flags]; see --help"));
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  std::vector<std::string> positional(rest.begin() + 1, rest.end());
  return cmd.run(positional);
}

}  // namespace
}  // namespace dgsr::cli

int main(int argc, char** argv) {
  // libtorch and BLIS run their intra-op threads on OpenMP, whose workers spin while waiting.
  // With more runnable threads than cores (the sampler threads, a server's RPC threads, a busy
  // 2-core machine) the spinning starves the threads doing the work: training ran 8x slower.
  // libgomp reads OMP_WAIT_POLICY when it is loaded, before main(), so set it and re-exec once.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // On failure, carry on with the default policy.
  }
  dgsr::KeepFreedMemoryForReuse();  // before any thread starts (common/allocator.h)
  return dgsr::cli::Main(argc, argv);
}
