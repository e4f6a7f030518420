#pragma once
#include "actors/actor.h"
#include "mailbox/mbox.h"
