// Replays the libFuzzer seed corpus (fuzz/corpus/request) through the fuzz target's checks in
// every build, so the invariants of fuzz/request_fuzz.cpp hold without clang (and under ASan +
// UBSan in the asan preset). A violated invariant aborts the test binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "../../../fuzz/request_fuzz.cpp"

namespace {

TEST(fuzz_corpus, every_seed_keeps_the_invariants) {
  const std::filesystem::path dir = CANARY_SOURCE_DIR "/fuzz/corpus/request";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(e.path().filename().string());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    // Each seed also arriving byte by byte.
    const std::string slow = std::string(1, '\0') + bytes;
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(slow.data()), slow.size());
    ++n;
  }
  EXPECT_GE(n, 50u);
}

}  // namespace
