#!/usr/bin/python3
"""Self-test of scripts/layering.py (run by make check-layering).

Each folder here is a tiny fake tree with a file `expect`: the exit status layering.py must
give on it (`exit N`), then lines its output must contain. The script is run on each with
--root, and with --dot on the good tree.
"""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "layering.py")


def run(*args):
    p = subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def cases():
    return sorted(d for d in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, d, "expect")))


class Layering(unittest.TestCase):
    def test_trees(self):
        self.assertIn("good", cases())
        for case in cases():
            with self.subTest(tree=case):
                root = os.path.join(HERE, case)
                with open(os.path.join(root, "expect")) as f:
                    lines = [x.rstrip("\n") for x in f if x.strip() and not x.startswith("#")]
                self.assertTrue(lines[0].startswith("exit "), "%s/expect: first line" % case)
                status = int(lines[0].split()[1])
                code, out, err = run("--root", root)
                self.assertEqual(code, status, "%s: exit status\n%s%s" % (case, out, err))
                for want in lines[1:]:
                    self.assertIn(want, out, "%s: output lacks the line\n%s" % (case, out))

    def test_dot(self):
        code, out, _ = run("--root", os.path.join(HERE, "good"), "--dot")
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith("digraph layering {"), out)
        self.assertIn('"agents/voice" -> "agents/supervisor" [label="1"];', out)
        self.assertTrue(out.rstrip().endswith("}"), out)

    def test_dot_marks_violations(self):
        code, out, err = run("--root", os.path.join(HERE, "net_includes_agents"), "--dot")
        self.assertEqual(code, 1)
        self.assertIn('"net" -> "agents/agents.h" [label="1", color=red, fontcolor=red];', out)
        self.assertIn("net/net.c:2:", err)


if __name__ == "__main__":
    unittest.main(verbosity=1)
