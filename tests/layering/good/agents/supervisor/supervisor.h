#pragma once
#include "agents/tools.h"
