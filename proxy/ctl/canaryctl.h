// canaryctl: the command-line client of the control API (like `kubectl argo rollouts`).
//   args.h     the command line: options, commands, usage, the server URL
//   render.h   the API's JSON as text (get, list, events, analysis, status lines), pretty JSON
//   wait.h     what `wait` does with each phase it sees
//   sse.h      the text/event-stream parser behind `get --watch` and `wait`
//   client.h   the HTTP client (the only Beast code of the CLI)
//   commands.cpp  the commands and run()
// The pure parts are exposed so unit tests can drive them without sockets.
#pragma once

#include "ctl/args.h"
#include "ctl/render.h"
#include "ctl/sse.h"
#include "ctl/wait.h"

namespace canary::ctl {

// The whole program: returns the process exit code (args.h: 0 ok, 1 error or wait: degraded,
// 2 wait: timed out, 64 usage error).
int run(int argc, char** argv);

}  // namespace canary::ctl
