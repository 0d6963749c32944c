#!/bin/sh
# Fails when a source calls std::filesystem::remove_all, which crashes in binaries linked to PyTorch's
# libtorch.so (common/files/remove_tree.h). Usage: no_remove_all.sh SOURCE_DIR
cd "$1" || exit 2
for d in common/files services tools tests; do
  [ -d "$d" ] || { echo "no $d under $1"; exit 2; }
done
hits=$(grep -rn --include='*.cc' --include='*.h' --include='*.cu' 'remove_all' common services tools tests)
[ $? -le 1 ] || exit 2  # 1: no match; 2: grep itself failed
hits=$(printf '%s\n' "$hits" | grep -v '^common/files/' | grep .)
if [ -n "$hits" ]; then
  echo "use r1r::files::RemoveTree instead of remove_all:"
  echo "$hits"
  exit 1
fi
echo "no remove_all outside common/files"
