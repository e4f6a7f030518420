#pragma once
#include "mailbox/mbox.h"
