"""Fill empty English msgstr entries of a .po file from a JSON dictionary.

Usage: python tools/fill_po.py sciweek/translations/en/LC_MESSAGES/messages.po tools/en.json
Reports msgids still without a translation (exit code 1 when any remain).
"""

import json
import sys

from babel.messages.pofile import read_po, write_po


def main(po_path: str, dict_path: str) -> int:
    with open(dict_path, encoding="utf-8") as fh:
        english = json.load(fh)
    with open(po_path, "rb") as fh:
        catalog = read_po(fh)
    missing = []
    for message in catalog:
        if not message.id:
            continue
        if not message.string and message.id in english:
            message.string = english[message.id]
        message.flags.discard("fuzzy")
        if not message.string:
            missing.append(message.id)
    with open(po_path, "wb") as fh:
        write_po(fh, catalog, width=100)
    for msgid in missing:
        print("missing:", msgid)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
