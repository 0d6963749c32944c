#include "common/files/remove_tree.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace r1r::files {
namespace {

namespace fs = std::filesystem;

fs::path Scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("r1r_files_test_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void Touch(const fs::path& p, const std::string& text = "x") { std::ofstream(p) << text; }

TEST(files, RemoveTreeDeletesNestedFilesAndDirectories) {
  const fs::path root = Scratch("nested");
  fs::create_directories(root / "a/b/c");
  fs::create_directories(root / "empty");
  Touch(root / "top.txt");
  Touch(root / "a/one.bin");
  Touch(root / "a/b/c/deep.json");
  ASSERT_TRUE(RemoveTree(root.string()).ok());
  EXPECT_FALSE(fs::exists(root));
}

TEST(files, RemoveTreeDeletesAPlainFileAndAcceptsAMissingPath) {
  const fs::path root = Scratch("plain");
  Touch(root / "f");
  ASSERT_TRUE(RemoveTree((root / "f").string()).ok());
  EXPECT_FALSE(fs::exists(root / "f"));
  EXPECT_TRUE(fs::exists(root));
  EXPECT_TRUE(RemoveTree((root / "never-was").string()).ok());
  Touch(root / "file");
  EXPECT_TRUE(RemoveTree((root / "file/child").string()).ok());  // through a file: nothing there either
  EXPECT_TRUE(fs::exists(root / "file"));
  ASSERT_TRUE(RemoveTree(root.string()).ok());
}

TEST(files, RemoveTreeRemovesLinksWithoutFollowingThem) {
  const fs::path root = Scratch("links");
  const fs::path outside = Scratch("links_target");
  Touch(outside / "keep.txt");
  fs::create_directories(root / "inner");
  fs::create_directory_symlink(outside, root / "inner/to_outside");
  fs::create_symlink(outside / "keep.txt", root / "file_link");
  fs::create_symlink(root / "dangling_target", root / "dangling");
  ASSERT_TRUE(RemoveTree(root.string()).ok());
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
  // A link given as the path itself is removed, its target kept.
  fs::create_directories(root);
  fs::create_directory_symlink(outside, root / "link");
  ASSERT_TRUE(RemoveTree((root / "link").string()).ok());
  EXPECT_FALSE(fs::is_symlink(root / "link"));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
  fs::create_directory_symlink(outside, root / "slashed");
  ASSERT_TRUE(RemoveTree((root / "slashed").string() + "/").ok());  // "link/" still names the link
  EXPECT_FALSE(fs::is_symlink(root / "slashed"));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
  ASSERT_TRUE(RemoveTree(root.string()).ok());
  ASSERT_TRUE(RemoveTree(outside.string()).ok());
}

TEST(files, RemoveTreeFailuresNameThePath) {
  EXPECT_EQ(RemoveTree("").code(), absl::StatusCode::kInvalidArgument);
  const fs::path root = Scratch("errors");
  const std::string too_long = (root / std::string(300, 'n')).string();  // over NAME_MAX, even for root
  const absl::Status named = RemoveTree(too_long);
  EXPECT_EQ(named.code(), absl::StatusCode::kInternal);
  EXPECT_NE(named.message().find(too_long), std::string::npos) << named;
  if (::geteuid() != 0) {  // root may delete from a read-only directory
    fs::create_directories(root / "locked");
    Touch(root / "locked/stuck");
    fs::permissions(root / "locked", fs::perms::owner_read | fs::perms::owner_exec);
    const absl::Status locked = RemoveTree((root / "locked").string());
    EXPECT_EQ(locked.code(), absl::StatusCode::kInternal);
    EXPECT_NE(locked.message().find("locked/stuck"), std::string::npos) << locked;
    fs::permissions(root / "locked", fs::perms::owner_all);
  }
  ASSERT_TRUE(RemoveTree(root.string()).ok());
}

}  // namespace
}  // namespace r1r::files
