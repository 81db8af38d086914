// canaryctl entry point: everything lives in the canary_ctl library (proxy/ctl) so tests can
// link it.
#include "ctl/canaryctl.h"

int main(int argc, char** argv) { return canary::ctl::run(argc, argv); }
