#pragma once
#include "agents/b.h"
