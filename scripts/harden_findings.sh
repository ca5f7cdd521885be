#!/usr/bin/env bash
# The commands of issue 9's findings 1-5 (the hardening pass over inspect and
# convert), run against one build, one result line each: run it with an old
# build and a new one to see each finding before and after its fix.
#   scripts/harden_findings.sh PATH/TO/vitport
# Needs the .venv (scripts/deps.sh --dev) for building the inputs and GNU time.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
V=$(realpath "$1")
S=$root/tests/fixtures/convert/vit_head.pth
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT; cd "$W"
NV=; $V convert --help 2>&1 | grep -q -- --no-verify && NV=--no-verify
PY=$root/.venv/bin/python
echo "== $V"
# 1: FIFO as --config, then SIGTERM after 2 s
mkfifo f
t0=$(date +%s.%N)
timeout -s TERM -k 3 2 $V convert $S out1 --set num_attention_heads=2 --config f >o1 2>&1; rc=$?
t1=$(date +%s.%N)
printf '1 fifo --config: rc=%s after %.1f s; leftover=%s; %s\n' $rc $(echo "$t1-$t0"|bc) "$(ls -A | grep -v '^f$\|^o1$' | tr '\n' ' ')" "$(head -c 200 o1 | tr '\n' ' ')"
# 2: one flipped byte in a stored member's data
cp $S bad.pth
$PY - <<'P'
import zipfile
z=zipfile.ZipFile('bad.pth'); i=[x for x in z.infolist() if x.filename.endswith('/data/2')][0]
b=bytearray(open('bad.pth','rb').read())
off=i.header_offset+30+len(i.filename.encode())+len(i.extra)
# local header extra may differ from central: read it
import struct
n,e=struct.unpack('<HH',b[i.header_offset+26:i.header_offset+30]); off=i.header_offset+30+n+e
b[off+100]^=0x01; open('bad.pth','wb').write(b)
P
$V convert bad.pth out2 --set num_attention_heads=2 $NV >o2 2>&1; rc=$?
echo "2 flipped byte in data/2 (--no-verify, so only the CRC can catch it): rc=$rc; $(tail -1 o2)"
# 3: 10^6-entry safetensors header, inspect peak RSS
$PY - <<'P'
import json,struct
h=('{'+','.join('"t%d":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}'%i for i in range(10**6))+'}').encode()
h+=b' '*((8-len(h)%8)%8)
open('big.safetensors','wb').write(struct.pack('<Q',len(h))+h)
P
/usr/bin/time -f '%M' -o t3 $V inspect big.safetensors >o3 2>&1; rc=$?
echo "3 inspect 10^6-entry header ($(stat -c %s big.safetensors) bytes): rc=$rc peak RSS $(( $(tail -1 t3) / 1024 )) MB"
# 4: storage offset 2^62 / 2^63-2 in a torch zip; BINPERSID on an empty tuple
$PY - <<'P'
import io, pickle, zipfile, collections, struct
class Stor: pass
def mk(name, off):
    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Stor): return ('storage', FloatStorage, '0', 'cpu', 4)
            return None
    class FloatStorage: pass
    FloatStorage.__module__='torch'; FloatStorage.__qualname__='FloatStorage'
    import types
    def _rebuild_tensor_v2(*a): pass
    _rebuild_tensor_v2.__module__='torch._utils'; _rebuild_tensor_v2.__qualname__='_rebuild_tensor_v2'
    class T:
        def __reduce__(self): return (_rebuild_tensor_v2, (Stor(), off, (2,), (1,), False, collections.OrderedDict()))
    buf=io.BytesIO()
    import sys
    m=types.ModuleType('torch'); m.FloatStorage=FloatStorage; sys.modules['torch']=m
    u=types.ModuleType('torch._utils'); u._rebuild_tensor_v2=_rebuild_tensor_v2; sys.modules['torch._utils']=u
    P(buf, protocol=2).dump({'w': T()})
    with zipfile.ZipFile(name,'w',zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', buf.getvalue()); z.writestr('archive/data/0', b'\0'*16)
        z.writestr('archive/version', '3\n'); z.writestr('archive/byteorder','little')
mk('off62.pth', 2**62); mk('off63.pth', 2**63-2)
# BINPERSID with an empty tuple
with zipfile.ZipFile('persid.pth','w',zipfile.ZIP_STORED) as z:
    z.writestr('archive/data.pkl', b'\x80\x02}q\x00X\x01\x00\x00\x00wq\x01)Qs.')
    z.writestr('archive/version', '3\n')
P
for f in off62 off63 persid; do $V inspect $f.pth >o4 2>&1; echo "4 $f: rc=$? $(tail -1 o4)"; done
# 5: num_labels against a 5-class head; a NUL in a --config key
$V convert $S out5 --set num_attention_heads=2 --set num_labels=100000000 $NV >o5 2>&1; rc=$?
echo "5a --set num_labels=100000000: rc=$rc; $(tail -1 o5 | head -c 250)"
printf '{"a\\u0000b": 1}' > nul.json
$V convert $S out6 --set num_attention_heads=2 --config nul.json $NV >o6 2>&1; rc=$?
echo "5b --config key with \\u0000: rc=$rc; $(tail -1 o6 | head -c 250); config key: $(grep -o '"a[^"]*"' out6/config.json 2>/dev/null)"
