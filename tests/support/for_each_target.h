// Runs a check once on every Highway target this build compiled and this
// CPU supports, so kernel tests compare each target with its reference.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "hwy/targets.h"

namespace dsv4::testing {

// Runs `check` once per target (and names the target on failure).
template <class Check>
void ForEachTarget(const Check& check) {
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check();
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace dsv4::testing
