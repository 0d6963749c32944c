#!/bin/sh
# Fails when a service or library names the test-support library or includes from tests/: fixtures
# (tiny random models) must never ship inside a service binary.
root=$1
hits=$(grep -rnE 'r1r_test_support|#include "tests/' "$root/services" "$root/common" 2>/dev/null)
if [ -n "$hits" ]; then
  echo "test support used outside tests and benches:"
  echo "$hits"
  exit 1
fi
echo "no service or library uses tests/support"
