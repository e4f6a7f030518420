#pragma once
#include "base/util.h"
