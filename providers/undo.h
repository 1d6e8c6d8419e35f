// The providers' name for pp::Undo (common/base/undo.h), kept so provider code reads as before.
#pragma once

#include "common/base/undo.h"

namespace pp::providers {

using Undo = ::pp::Undo;

}  // namespace pp::providers
