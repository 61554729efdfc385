#!/usr/bin/env python3
"""Generates monmix-8ch.touchosc: a TouchOSC (Mk1 / "classic") layout for one monmix mix.

A .touchosc file is a zip holding index.xml; names are base64 in layout version 15.
The page is named "1" and the controls fader1..8 / toggle1..8 with their default
addresses, so they send /1/fader{n} and /1/toggle{n}: monmix maps them to the mix set by
`osc.touchosc_mix` (fader = channel fader, toggle = mute). The master fader uses the
explicit address /mix/{MIX}/master/fader (MIX = a position, so feedback matches).

Usage: python3 make_layout.py [CHANNELS] [MIX]   (defaults 8, 1)
"""
import base64
import sys
import zipfile

channels = int(sys.argv[1]) if len(sys.argv) > 1 else 8
mix = sys.argv[2] if len(sys.argv) > 2 else "1"


def b64(s):
    return base64.b64encode(s.encode()).decode()


W, H = 1024, 768  # iPad landscape
strip = (W - 140) // channels
controls = []
for n in range(1, channels + 1):
    x = 10 + (n - 1) * strip
    controls.append(
        f'<control name="{b64(f"label{n}")}" x="{x}" y="10" w="{strip - 10}" h="30" color="gray" '
        f'type="labelh" text="{b64(f"Ch {n}")}" size="14" background="true" outline="false"></control>'
    )
    controls.append(
        f'<control name="{b64(f"fader{n}")}" x="{x}" y="50" w="{strip - 10}" h="{H - 180}" color="yellow" '
        f'scalef="0.0" scalet="1.0" type="faderv" response="absolute" inverted="false" centered="false"></control>'
    )
    controls.append(
        f'<control name="{b64(f"toggle{n}")}" x="{x}" y="{H - 120}" w="{strip - 10}" h="60" color="red" '
        f'scalef="0.0" scalet="1.0" type="toggle" local_off="false"></control>'
    )
mx = 20 + channels * strip
controls.append(
    f'<control name="{b64("master")}" x="{mx}" y="50" w="100" h="{H - 180}" color="green" scalef="0.0" scalet="1.0" '
    f'type="faderv" response="absolute" inverted="false" centered="false" osc_cs="{b64(f"/mix/{mix}/master/fader")}"></control>'
)
controls.append(
    f'<control name="{b64("masterlabel")}" x="{mx}" y="10" w="100" h="30" color="green" type="labelh" '
    f'text="{b64("Master")}" size="14" background="true" outline="false"></control>'
)
xml = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<layout version="15" mode="1" orientation="horizontal" w="{H}" h="{W}">'
    f'<tabpage name="{b64("1")}" scalef="0.0" scalet="1.0">' + "".join(controls) + "</tabpage></layout>"
)
out = f"monmix-{channels}ch.touchosc"
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    info = zipfile.ZipInfo("index.xml", date_time=(2026, 1, 1, 0, 0, 0))
    z.writestr(info, xml)
print(f"wrote {out}")
