#!/usr/bin/env python3
"""Instructions per message from callgrind files (bench/callgrind.sh): inclusive costs of
each thread's entry point and of the ingest path's hot functions, divided by the calls of
KeyPair::Sign (one Ed25519 signature per envelope). One column per file."""
import collections
import re
import sys


def load(path):
    names = {}

    def name(s):
        m = re.match(r'\((\d+)\)(?: (.*))?', s)
        if not m:
            return s
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), s)

    incl = collections.Counter()
    signatures = 0
    fn = callee = None
    calls = None
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('fn='):
                fn = name(line[3:])
            elif line.startswith('cfn='):
                callee = name(line[4:])
            elif line.startswith('calls='):
                calls = int(line[6:].split()[0])
            elif line and (line[0].isdigit() or line[0] in '+-*'):
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[1])
                if calls is not None:
                    if 'KeyPair::Sign' in callee:
                        signatures += calls
                    if callee != fn:  # recursion is counted once
                        incl[fn] += cost
                    calls = None
                else:
                    incl[fn] += cost
    return incl, signatures


ROWS = [
    ('core thread (Core::RunBatch)', 'chatd::Core::RunBatch()'),
    ('  Ed25519 (KeyPair::Sign)', 'chatd::crypto::KeyPair::Sign('),
    ('  Core::OpSend', 'chatd::Core::OpSend('),
    ('  store::Writer::Append', 'chatd::store::Writer::Append('),
    ('  events::WriteMessage', 'chatd::events::WriteMessage('),
    ('json::Parse (all threads)', 'chatd::json::Parse('),
    ('gateway thread (Gateway::Run)', 'chatd::Gateway::Run('),
    ('  Gateway::HandleFrame', '=chatd::Gateway::HandleFrame(chatd::Session*, '
     'std::basic_string_view<char, std::char_traits<char> >)'),
    ('index thread (SearchIndexer::Run)', 'chatd::store::SearchIndexer::Run()'),
    ('checkpointer thread', 'chatd::store::Store::StartCheckpointer(long)::{lambda()#1}> > >::_M_run()'),
    ('sync thread (Core::RunSyncer)', 'chatd::Core::RunSyncer()'),
]


def cost(incl, key):
    if key.startswith('='):  # this exact function
        return incl.get(key[1:], 0)
    return max((v for k, v in incl.items() if k.startswith(key) or (key.startswith('chatd::store::Store::Start') and key in k)),
               default=0)


runs = [load(p) for p in sys.argv[1:]]
print(f"{'instructions per message':36s}" + ''.join(f"{i + 1:>12d}" for i in range(len(runs))))
print(f"{'messages (signatures)':36s}" + ''.join(f"{s:12,d}" for _, s in runs))
for label, key in ROWS:
    print(f"{label:36s}" + ''.join(f"{cost(incl, key) / max(s, 1):12,.0f}" for incl, s in runs))
outside = [(cost(i, ROWS[0][1]) - cost(i, ROWS[1][1])) / max(s, 1) for i, s in runs]
print(f"{'core outside Ed25519':36s}" + ''.join(f"{v:12,.0f}" for v in outside))
