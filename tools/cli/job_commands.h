// CLI verbs against the orchestrator's JobService: submit, list, status, cancel, watch.
#pragma once

namespace r1r::cli {

int SubmitCommand(int argc, char** argv);
int ListCommand(int argc, char** argv);
int StatusCommand(int argc, char** argv);
int CancelCommand(int argc, char** argv);
int WatchCommand(int argc, char** argv);

}  // namespace r1r::cli
