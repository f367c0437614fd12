// dgsr ingest: sends interaction events to a running server (the server holds the store).
// Events come from --events (inline) or --events_file (a file, or - for stdin), one per line or entry:
// user,item,time[,event_id] with time in Unix seconds. Batches of --ingest_batch_size events go over one
// IngestStream call; each batch is atomic on the server.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/client_flags.h"
#include "common/status_macros.h"
#include "dgsr/v1/recommendation_service.grpc.pb.h"

ABSL_FLAG(std::string, events, "", "inline events: user,item,time[,event_id] separated by ';'");
ABSL_FLAG(std::string, events_file, "", "a file of events, one user,item,time[,event_id] per line ('-': stdin)");
ABSL_FLAG(int, ingest_batch_size, 1000, "events per atomic batch");

namespace dgsr::cli {
namespace {

absl::StatusOr<v1::Event> ParseEvent(absl::string_view text, const std::string& where) {
  std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(text), ',');
  int64_t time = 0;
  if ((f.size() != 3 && f.size() != 4) || !absl::SimpleAtoi(f[2], &time)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected user,item,time[,event_id], got '", text, "'"));
  }
  v1::Event e;
  e.set_user_id(f[0]);
  e.set_item_id(f[1]);
  e.set_time_unix_s(time);
  if (f.size() == 4) e.set_event_id(f[3]);
  return e;
}

// Every event, parsed before anything is sent: a malformed line sends nothing.
absl::StatusOr<std::vector<v1::Event>> ReadEvents() {
  std::vector<v1::Event> events;
  const std::string inline_events = absl::GetFlag(FLAGS_events);
  const std::string input = absl::GetFlag(FLAGS_events_file);
  if (inline_events.empty() == input.empty()) return absl::InvalidArgumentError("give exactly one of --events and --events_file");
  if (!inline_events.empty()) {
    int n = 0;
    for (absl::string_view entry : absl::StrSplit(inline_events, ';', absl::SkipWhitespace())) {
      ASSIGN_OR_RETURN(v1::Event e, ParseEvent(entry, absl::StrCat("--events entry ", ++n)));
      events.push_back(std::move(e));
    }
    return events;
  }
  std::ifstream file;
  std::istream* in = &std::cin;
  if (input != "-") {
    file.open(input);
    if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", input));
    in = &file;
  }
  int line_number = 0;
  for (std::string line; std::getline(*in, line);) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty() || line[0] == '#') continue;
    ASSIGN_OR_RETURN(v1::Event e, ParseEvent(line, absl::StrCat(input, ":", line_number)));
    events.push_back(std::move(e));
  }
  return events;
}

absl::Status Ingest() {
  const int batch_size = absl::GetFlag(FLAGS_ingest_batch_size);
  if (batch_size < 1) return absl::InvalidArgumentError("--ingest_batch_size must be >= 1");
  ASSIGN_OR_RETURN(std::vector<v1::Event> events, ReadEvents());
  if (events.empty()) return absl::InvalidArgumentError("no events to send");
  ASSIGN_OR_RETURN(auto channel, ChannelFromFlags());
  auto stub = v1::RecommendationService::NewStub(channel);
  auto ctx = ContextFromFlags();
  v1::IngestStreamResponse response;
  auto writer = stub->IngestStream(ctx.get(), &response);
  for (size_t start = 0; start < events.size(); start += batch_size) {
    v1::IngestStreamRequest batch;
    for (size_t i = start; i < std::min(events.size(), start + batch_size); ++i) *batch.add_events() = events[i];
    if (!writer->Write(batch)) break;  // the server ended the call; Finish() says why
  }
  writer->WritesDone();
  RETURN_IF_ERROR(FromGrpc(writer->Finish()));
  std::printf("accepted %lld, duplicates %lld, batches %lld; acknowledged as %s%s\n",
              static_cast<long long>(response.accepted()), static_cast<long long>(response.duplicates()),
              static_cast<long long>(response.batches()), v1::Durability_Name(response.durability()).c_str(),
              response.durability() == v1::DURABILITY_GROUP_COMMIT
                  ? absl::StrCat(" (fsynced within ", response.group_commit_interval_ms(), " ms)").c_str()
                  : "");
  return absl::OkStatus();
}

}  // namespace

int RunIngest(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr ingest: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  absl::Status s = Ingest();
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr ingest: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace dgsr::cli
