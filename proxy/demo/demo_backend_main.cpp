// demo-backend entry point: everything lives in demo/demo_backend.cpp so tests can link it.
#include "demo/demo_backend.h"

int main(int argc, char** argv) { return canary::demo::run(argc, argv); }
