#include "common/files/paths.h"

#include "common/files/remove_tree.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace r1r::files {
namespace {

namespace fs = std::filesystem;

fs::path Scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("r1r_paths_test_" + name + "_" + std::to_string(::getpid()));
  (void)RemoveTree(dir.string());
  fs::create_directories(dir);
  return fs::canonical(dir);
}

void Touch(const fs::path& p, const std::string& text = "x") { std::ofstream(p) << text; }

TEST(files, ResolvePathResolvesSymlinksOfTheExistingPrefixAndKeepsTheRest) {
  const fs::path root = Scratch("resolve");
  fs::create_directories(root / "real/sub");
  fs::create_symlink(root / "real", root / "link");
  auto r = ResolvePath((root / "link/sub/./new/file.txt").string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (root / "real/sub/new/file.txt").string());
  // ".." inside the existing part is the kernel's to resolve (through the link's target).
  auto up = ResolvePath((root / "link/sub/../sub").string());
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(*up, (root / "real/sub").string());
}

TEST(files, ResolvePathRefusesDotDotAfterAMissingDirectoryAndDanglingLinks) {
  const fs::path root = Scratch("refuse");
  EXPECT_FALSE(ResolvePath((root / "missing/../../etc").string()).ok());
  fs::create_symlink("/nonexistent/r1r/target", root / "dangling");
  EXPECT_FALSE(ResolvePath((root / "dangling/x").string()).ok());
  EXPECT_FALSE(ResolvePath("").ok());
  EXPECT_FALSE(ResolvePath(std::string("a\0b", 3)).ok());
}

TEST(files, IsUnderComparesWholeComponents) {
  EXPECT_TRUE(IsUnder("/a/b", "/a/b"));
  EXPECT_TRUE(IsUnder("/a/b/c", "/a/b"));
  EXPECT_FALSE(IsUnder("/a/bc", "/a/b"));
  EXPECT_FALSE(IsUnder("/a", "/a/b"));
  EXPECT_TRUE(IsUnder("/anything", "/"));
}

TEST(files, ConfineRejectsDotDotAndSymlinkEscapes) {
  const fs::path base = Scratch("confine");
  fs::create_directories(base / "root/data");
  fs::create_directories(base / "outside");
  Touch(base / "outside/secret");
  fs::create_symlink(base / "outside", base / "root/escape");
  auto roots = Roots::Make({{"data-root", (base / "root").string()}});
  ASSERT_TRUE(roots.ok()) << roots.status();

  auto inside = roots->Confine((base / "root/data/new-dir").string(), "export_dir");
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_EQ(*inside, (base / "root/data/new-dir").string());

  auto dotdot = roots->Confine((base / "root/data/../../outside/secret").string(), "spec_path");
  ASSERT_FALSE(dotdot.ok());
  EXPECT_EQ(dotdot.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(dotdot.status().message().find("spec_path"), std::string::npos);
  EXPECT_NE(dotdot.status().message().find("--data-root="), std::string::npos);

  auto link = roots->Confine((base / "root/escape/secret").string(), "image_path");
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.status().code(), absl::StatusCode::kPermissionDenied);

  auto sibling = roots->Confine((base / "rootx").string(), "work_dir");  // a prefix, not a parent
  EXPECT_FALSE(sibling.ok());
}

TEST(files, ConfineAcceptsAnyOfSeveralRoots) {
  const fs::path base = Scratch("several");
  fs::create_directories(base / "a");
  fs::create_directories(base / "b");
  auto roots = Roots::Make({{"data-root", (base / "a").string()}, {"work-root", (base / "b").string()}});
  ASSERT_TRUE(roots.ok());
  EXPECT_TRUE(roots->Confine((base / "a/x").string(), "f").ok());
  EXPECT_TRUE(roots->Confine((base / "b/y").string(), "f").ok());
  EXPECT_FALSE(roots->Confine((base / "c").string(), "f").ok());
  EXPECT_FALSE(Roots::Make({{"data-root", ""}}).ok());
}

TEST(files, ReadRegularFileRefusesFifosDevicesDirectoriesAndLargeFilesWithoutBlocking) {
  const fs::path base = Scratch("read");
  Touch(base / "ok.txt", "hello");
  auto ok = ReadRegularFile((base / "ok.txt").string(), 5);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "hello");
  EXPECT_FALSE(ReadRegularFile((base / "ok.txt").string(), 4).ok());
  ASSERT_EQ(::mkfifo((base / "fifo").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  auto fifo = ReadRegularFile((base / "fifo").string(), 1 << 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.status().message().find("FIFO"), std::string::npos);
  EXPECT_FALSE(CheckRegularFile((base / "fifo").string(), 1 << 20).ok());
  auto zero = ReadRegularFile("/dev/zero", 1 << 20);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("device"), std::string::npos);
  EXPECT_FALSE(ReadRegularFile(base.string(), 1 << 20).ok());
  auto missing = ReadRegularFile((base / "missing").string(), 1);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(files, CheckReplaceableAcceptsOnlyMissingEmptyOrMarkedDirectories) {
  const fs::path base = Scratch("owned");
  EXPECT_TRUE(CheckReplaceable((base / "missing").string(), "export_dir").ok());
  fs::create_directories(base / "empty");
  EXPECT_TRUE(CheckReplaceable((base / "empty").string(), "export_dir").ok());
  fs::create_directories(base / "theirs");
  Touch(base / "theirs/job-1.json");
  auto theirs = CheckReplaceable((base / "theirs").string(), "export_dir");
  ASSERT_FALSE(theirs.ok());
  EXPECT_EQ(theirs.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(theirs.message().find("export_dir"), std::string::npos);
  ASSERT_TRUE(MarkOwned((base / "empty").string(), "test").ok());
  Touch(base / "empty/weights");
  EXPECT_TRUE(CheckReplaceable((base / "empty").string(), "export_dir").ok());
  fs::create_directory_symlink(base / "empty", base / "link");
  EXPECT_FALSE(CheckReplaceable((base / "link").string(), "export_dir").ok());
  Touch(base / "file");
  EXPECT_FALSE(CheckReplaceable((base / "file").string(), "export_dir").ok());
}

}  // namespace
}  // namespace r1r::files
