#!/usr/bin/python3
"""Checks mail files against the rules every kallad message must obey
(INTEROP.md: M1-M13 for the mail, I1-I20 for the calendar object), read
with parsers independent of kallad: Python's email package for the MIME
structure and headers, the icalendar package for the calendar object, and
plain byte-level reading for what parsers forgive (line ends, folding,
escaping, lengths).

    check_message.py [--organizer ADDRESS] FILE_OR_DIR...

Prints one line per broken rule, "FILE: RULE: what", then "N passed, M
failed"; exits 1 when any failed, 2 on bad usage. A directory stands for
the files in it. A file with LF line ends only (as smtp-sink stores what
it received) is read as the CRLF it was on the wire. Across the files given, messages about one UID must name
the same ORGANIZER (I6, I9).

Attachments other than the calendar must carry their name both ways:
RFC 2231 `filename*` in Content-Disposition and an RFC 2047 encoded `name`
in Content-Type when the name is not ASCII, both decoding to the same
text (rule A1 here: what Thunderbird and Gmail write, and what mutt and
MHonArc read)."""

import argparse
import email
import email.policy
import email.utils
import os
import re
import sys

import icalendar

CRLF = b"\r\n"
TEXT_PROPS = ("SUMMARY", "LOCATION", "DESCRIPTION", "COMMENT")
FORBIDDEN_PROPS = ("X-WR-TIMEZONE", "X-WR-CALNAME", "NAME", "TIMEZONE-ID")
REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
                    "Auto-Submitted")


class Report:
    def __init__(self, path):
        self.path = path
        self.problems = []

    def fail(self, rule, what):
        self.problems.append(f"{self.path}: {rule}: {what}")

    def check(self, ok, rule, what):
        if not ok:
            self.fail(rule, what)
        return ok


# --- the mail ----------------------------------------------------------------

def check_raw(r, raw):
    """M6, M13: 7-bit, CRLF line ends only, no line over 998 octets."""
    if any(b > 127 for b in raw):
        r.fail("M6", "raw 8-bit bytes in the message")
    lines = raw.split(CRLF)
    for n, line in enumerate(lines, 1):
        if b"\n" in line or b"\r" in line:
            r.fail("M13", f"line {n}: a bare CR or LF")
            break
    for n, line in enumerate(lines, 1):
        if len(line) > 998:
            r.fail("M13", f"line {n}: {len(line)} octets")
            break


def addresses(msg, name):
    return email.utils.getaddresses([str(v) for v in msg.get_all(name, [])])


def check_headers(r, msg, raw):
    head = raw.split(CRLF + CRLF, 1)[0]
    r.check(all(b < 128 for b in head), "M11", "non-ASCII bytes in the header")
    for name in REQUIRED_HEADERS:
        n = len(msg.get_all(name, []))
        r.check(n == 1, "M11", f"{name}: {n} times, not once")
    r.check(str(msg.get("MIME-Version", "")).strip() == "1.0", "M11", "MIME-Version is not 1.0")
    r.check(str(msg.get("Auto-Submitted", "")).strip().lower() == "auto-generated", "M11",
            "Auto-Submitted is not auto-generated")
    mid = str(msg.get("Message-ID", "")).strip()
    r.check(re.fullmatch(r"<[^<>@\s]+@[A-Za-z0-9.-]+>", mid) is not None, "M11",
            f"Message-ID {mid!r} is not <unique@domain>")
    try:
        r.check(email.utils.parsedate_to_datetime(str(msg["Date"])) is not None, "M11",
                "Date does not parse")
    except (TypeError, ValueError):
        r.fail("M11", "Date does not parse")
    for name in ("Subject", "From", "To"):
        value = msg.get(name)
        if value is not None and getattr(value, "defects", None):
            r.fail("M11", f"{name}: {value.defects[0]}")
    to = addresses(msg, "To")
    r.check(len(to) == 1 and "@" in to[0][1], "M12", f"To holds {len(to)} addresses")
    r.check(not msg.get_all("Bcc") and not msg.get_all("Cc"), "M12", "Bcc or Cc present")
    return to[0][1].lower() if to else ""


def leaves(part):
    if part.is_multipart():
        for sub in part.iter_parts():
            yield from leaves(sub)
    else:
        yield part


def check_parts(r, msg):
    for part in leaves(msg):
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        r.check(cte in ("7bit", "quoted-printable", "base64"), "M6",
                f"{part.get_content_type()}: Content-Transfer-Encoding {cte}")
        # The message's own text; a file attached as it is keeps its bytes
        # and says nothing of a charset it cannot know.
        if part.get_content_maintype() == "text" and part.get_content_disposition() != "attachment":
            cs = (part.get_param("charset") or "").upper()
            r.check(cs == "UTF-8", "M4", f"{part.get_content_type()}: charset {cs or 'missing'}")
        if part.get_content_type() == "text/calendar":
            r.check(part.get_param("method") is not None, "M10", "text/calendar without method")


def decoded_name_param(part):
    """The Content-Type name, RFC 2047 words decoded (email's parser does)."""
    ct = part["Content-Type"]
    return ct.params.get("name") if hasattr(ct, "params") else None


def check_files(r, msg):
    """A1 (and M8 for invite.ics): attachments name themselves both ways."""
    for part in leaves(msg):
        disp = part.get_content_disposition()
        if disp != "attachment":
            continue
        filename = part.get_filename()
        name = decoded_name_param(part)
        if not r.check(filename, "A1", f"{part.get_content_type()}: attachment without filename"):
            continue
        r.check(name == filename, "A1",
                f"Content-Type name {name!r} differs from filename {filename!r}")
        if not filename.isascii():
            r.check("filename*" in raw_header(part, "Content-Disposition"), "A1",
                    f"{filename!r}: no RFC 2231 filename*")
            r.check("=?" in raw_header(part, "Content-Type"), "A1",
                    f"{filename!r}: Content-Type name is not RFC 2047 encoded")


def raw_header(part, name):
    """A header as written, before any decoding."""
    for k, v in part.raw_items():
        if k.lower() == name.lower():
            return str(v)
    return ""


def calendar_parts(msg):
    """Parts a client takes for an invitation's: with method=, text/calendar,
    or application/ics (M1's attachment, so one alone is a broken invite)."""
    return [p for p in leaves(msg) if p.get_param("method") is not None
            or p.get_content_type() in ("text/calendar", "application/ics")]


def check_structure(r, msg, cal_parts):
    """M1, M5, M7, M8, M9: mixed { alternative { plain, html?, calendar }, invite.ics }."""
    with_method = [p for p in leaves(msg) if p.get_param("method") is not None]
    r.check(len(with_method) == 1, "M5", f"{len(with_method)} parts carry method=")
    if msg.get_content_type() != "multipart/mixed":
        r.fail("M1", f"the message is {msg.get_content_type()}, not multipart/mixed")
        return None
    parts = list(msg.iter_parts())
    alt = parts[0] if parts else None
    if not r.check(alt is not None and alt.get_content_type() == "multipart/alternative",
                   "M1", "the first part is not multipart/alternative"):
        return None
    kinds = [p.get_content_type() for p in alt.iter_parts()]
    r.check(kinds[:1] == ["text/plain"], "M9", f"alternatives {kinds}: text/plain not first")
    r.check(kinds[-1:] == ["text/calendar"], "M9", f"alternatives {kinds}: calendar not last")
    r.check(set(kinds) <= {"text/plain", "text/html", "text/calendar"}, "M1",
            f"alternatives {kinds}")
    inline = list(alt.iter_parts())[-1]
    for h in ("Content-Disposition", "Content-ID"):
        r.check(inline.get(h) is None, "M7", f"{h} on the inline calendar part")
    r.check(inline.get_param("name") is None, "M7", "name= on the inline calendar part")
    ics = [p for p in parts[1:] if p.get_content_type() == "application/ics"]
    if not r.check(len(ics) == 1, "M1", f"{len(ics)} application/ics attachments"):
        return inline
    att = ics[0]
    r.check(att.get_param("name") == "invite.ics", "M1", "application/ics name is not invite.ics")
    r.check(att.get_content_disposition() == "attachment" and
            (att.get_filename() or "").endswith(".ics"), "M8",
            f"attachment file name {att.get_filename()!r}")
    r.check(att.get_filename() == "invite.ics", "M1", "attachment filename is not invite.ics")
    r.check(att.get_param("method") is None, "M5", "the attachment carries method=")
    r.check(att.get_payload(decode=True) == inline.get_payload(decode=True), "M1",
            "inline part and attachment differ")
    return inline


# --- the calendar object -----------------------------------------------------

def unfold(data):
    """Physical lines (CRLF split) joined into content lines."""
    out = []
    for line in data.split(CRLF):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += line[1:]
        else:
            out.append(line)
    if out and out[-1] == b"":
        out.pop()
    return out


def split_line(line):
    """NAME, [(param, value)], value of a content line, honouring quotes."""
    i, quoted = 0, False
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted = not quoted
        elif c == ":" and not quoted:
            break
        i += 1
    head, value = line[:i], line[i + 1:]
    pieces, cur, quoted = [], "", False
    for c in head:
        if c == '"':
            quoted = not quoted
        if c == ";" and not quoted:
            pieces.append(cur)
            cur = ""
        else:
            cur += c
    pieces.append(cur)
    params = []
    for p in pieces[1:]:
        k, _, v = p.partition("=")
        params.append((k.upper(), v))
    return pieces[0].upper(), params, value


def check_text_value(r, name, value):
    """I13: TEXT escaped once: \\\\ \\; \\, \\n, nothing else, never doubled."""
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            nxt = value[i + 1:i + 2]
            if nxt not in ("\\", ";", ",", "n", "N"):
                r.fail("I13", f"{name}: bad escape \\{nxt}")
                return
            if nxt == "\\" and value[i + 2:i + 3] in (";", ",", "n"):
                r.fail("I13", f"{name}: escaped twice")
                return
            i += 2
            continue
        if c in ";,":
            r.fail("I13", f"{name}: unescaped {c!r}")
            return
        i += 1


def check_lexical(r, data):
    """I1, I2, I4, I13, I14, I15 on the bytes."""
    if not data.endswith(CRLF) or b"\n" in data.replace(CRLF, b"") or b"\r" in data.replace(CRLF, b""):
        r.fail("I1", "not CRLF line ends only")
    phys = data.split(CRLF)
    if phys and phys[-1] == b"":
        phys.pop()
    for n, line in enumerate(phys, 1):
        if line == b"":
            r.fail("I1", f"line {n} is empty")
            break
        if len(line) > 75:
            r.fail("I2", f"line {n}: {len(line)} octets")
            break
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            r.fail("I2", f"line {n}: folded inside a UTF-8 sequence or not UTF-8")
            break
    lines = []
    for raw in unfold(data):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            r.fail("I2", "a content line is not UTF-8")
            return []
    parsed = []
    for line in lines:
        name, params, value = split_line(line)
        parsed.append((name, params, value))
        if name in FORBIDDEN_PROPS:
            r.fail("I4", f"{name} present")
        if name not in ("BEGIN", "END") and value == "":
            r.fail("I15", f"{name} is empty")
        if name in TEXT_PROPS:
            check_text_value(r, name, value)
        for k, v in params:
            if any(c in v for c in ":;,") and not (v.startswith('"') and v.endswith('"')):
                r.fail("I14", f"{name};{k}: {v!r} not quoted")
            if k == "CN":
                inner = v[1:-1] if v.startswith('"') and v.endswith('"') else v
                if any(c in inner for c in '"^\r\n'):
                    r.fail("I14", f"{name};CN holds a quote, caret or line break")
    return parsed


def param(params, key):
    for k, v in params:
        if k == key:
            return v.strip('"')
    return None


def components(parsed):
    """[(component name, [(name, params, value)])] of the innermost blocks."""
    stack, out = [], []
    for name, params, value in parsed:
        if name == "BEGIN":
            stack.append((value.upper(), []))
        elif name == "END":
            if stack:
                out.append(stack.pop())
        elif stack:
            stack[-1][1].append((name, params, value))
    return out


def props(comp, name):
    return [p for p in comp[1] if p[0] == name]


def check_calendar(r, data, method_param, to_addr, from_addr, organizer, seen_uids):
    parsed = check_lexical(r, data)
    try:
        cal = icalendar.Calendar.from_ical(data.decode("utf-8", "replace"))
    except ValueError as e:
        r.fail("I3", f"the calendar does not parse: {e}")
        return
    comps = components(parsed)
    top = [c for c in comps if c[0] == "VCALENDAR"]
    if not r.check(len(top) == 1, "I3", f"{len(top)} VCALENDAR objects"):
        return
    vcal = top[0]
    r.check([p[2] for p in props(vcal, "VERSION")] == ["2.0"], "I3", "VERSION is not 2.0")
    r.check(len(props(vcal, "PRODID")) == 1, "I3", "not one PRODID")
    methods = [p[2] for p in props(vcal, "METHOD")]
    method = methods[0] if len(methods) == 1 else None
    r.check(method in ("REQUEST", "CANCEL"), "I3", f"METHOD {methods}")
    r.check(method_param is not None and method_param == method_param.upper(), "M3",
            f"method={method_param} not upper case")
    r.check(method_param is not None and method_param.upper() == method, "M2",
            f"method={method_param} but METHOD:{method}")

    events = [c for c in comps if c[0] == "VEVENT"]
    uids = {p[2] for e in events for p in props(e, "UID")}
    r.check(len(events) == 1 or (method == "REQUEST" and len(uids) == 1), "I5",
            f"{len(events)} VEVENTs")
    lib_events = list(cal.walk("VEVENT"))
    r.check(len(lib_events) == len(events), "I5", "icalendar reads another number of VEVENTs")
    if not events:
        return
    ev = events[0]
    for e in events:
        r.check(not props(e, "RRULE"), "I5", "RRULE in a VEVENT")
    for req in ("UID", "DTSTAMP", "DTSTART", "SUMMARY", "ORGANIZER", "SEQUENCE"):
        r.check(len(props(ev, req)) == 1, "I12" if req != "SEQUENCE" else "I8",
                f"{req}: {len(props(ev, req))} times")
    uid = (props(ev, "UID") or [("", [], "")])[0][2]
    r.check(re.fullmatch(r"[^@\s]+@[^@\s]+", uid) is not None, "I6", f"UID {uid!r} is not ...@domain")
    stamp = (props(ev, "DTSTAMP") or [("", [], "")])[0]
    r.check(stamp[2].endswith("Z") and not param(stamp[1], "TZID"), "I7", "DTSTAMP not in UTC")
    seq = (props(ev, "SEQUENCE") or [("", [], "")])[0][2]
    r.check(seq.isdigit(), "I8", f"SEQUENCE {seq!r}")

    org = (props(ev, "ORGANIZER") or [("", [], "")])[0]
    org_addr = org[2][7:].lower() if org[2].lower().startswith("mailto:") else None
    if r.check(org_addr, "I9", f"ORGANIZER {org[2]!r} is not a mailto: URI"):
        r.check(param(org[1], "CN"), "I9", "ORGANIZER without CN")
        if organizer:
            r.check(org_addr == organizer.lower(), "I9", f"ORGANIZER {org_addr}, not {organizer}")
        r.check(from_addr.rsplit("@", 1)[-1] == org_addr.rsplit("@", 1)[-1], "I10",
                f"From {from_addr} outside the organizer's domain")
        sent_by = param(org[1], "SENT-BY")
        if sent_by is not None:
            raw = [v for k, v in org[1] if k == "SENT-BY"][0]
            r.check(raw.startswith('"mailto:'), "I10", "SENT-BY is not a quoted mailto: URI")
        r.check(org_addr != to_addr, "I11", "the recipient is the ORGANIZER")
        prior = seen_uids.setdefault(uid, org_addr)
        r.check(prior == org_addr, "I9", f"UID {uid}: ORGANIZER {org_addr}, before {prior}")

    atts = props(ev, "ATTENDEE")
    if r.check(len(atts) == 1, "I12", f"{len(atts)} ATTENDEEs"):
        a = atts[0]
        r.check(a[2].lower() == "mailto:" + to_addr, "I12", f"ATTENDEE {a[2]} is not To: {to_addr}")
        r.check(param(a[1], "CN"), "I12", "ATTENDEE without CN")
        want = {"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION",
                "RSVP": "FALSE" if method == "CANCEL" else "TRUE"}
        for k, v in want.items():
            got = (param(a[1], k) or "").upper()
            r.check(got == v, "I12", f"ATTENDEE {k}={got or '(none)'}, not {v}")

    tzids_used = set()
    for name in ("DTSTART", "DTEND"):
        for _, params, value in props(ev, name):
            tz = param(params, "TZID")
            r.check(tz or value.endswith("Z"), "I16", f"{name} {value} is floating")
            if tz:
                tzids_used.add([v for k, v in params if k == "TZID"][0])
    r.check(not props(ev, "DURATION"), "I16", "DURATION used")
    r.check(len(props(ev, "DTEND")) == 1, "I16", "no DTEND")

    zones = [c for c in comps if c[0] == "VTIMEZONE"]
    zone_ids = [p[2] for z in zones for p in props(z, "TZID")]
    r.check(sorted(zone_ids) == sorted(tzids_used) and len(set(zone_ids)) == len(zone_ids),
            "I17", f"VTIMEZONEs {zone_ids} for TZIDs {sorted(tzids_used)}")
    check_zones(r, parsed)

    status = [p[2] for p in props(ev, "STATUS")]
    if method == "REQUEST":
        r.check(status in (["CONFIRMED"], ["TENTATIVE"]), "I19", f"STATUS {status}")
    if method == "CANCEL":
        r.check(status == ["CANCELLED"], "I20", f"STATUS {status}")
        r.check(not any(c[0] == "VALARM" for c in comps), "I20", "VALARM in a cancel")


def check_zones(r, parsed):
    """I18: compact VTIMEZONEs: plain TZID, one STANDARD (and one DAYLIGHT,
    both with yearly rules), no RDATE."""
    depth, zone = [], None
    for name, _, value in parsed:
        if name == "BEGIN":
            depth.append(value.upper())
            if value.upper() == "VTIMEZONE":
                zone = {"STANDARD": [], "DAYLIGHT": [], "tzid": None}
            elif zone is not None and value.upper() in ("STANDARD", "DAYLIGHT"):
                zone[value.upper()].append([])
        elif name == "END":
            if depth and depth.pop() == "VTIMEZONE" and zone is not None:
                finish_zone(r, zone)
                zone = None
        elif zone is not None:
            if depth[-1] == "VTIMEZONE" and name == "TZID":
                zone["tzid"] = value
            elif depth[-1] in ("STANDARD", "DAYLIGHT"):
                zone[depth[-1]][-1].append((name, value))


def finish_zone(r, zone):
    tzid = zone["tzid"] or ""
    r.check(tzid and not tzid.startswith("/"), "I18", f"TZID {tzid!r} carries a prefix")
    std, dst = zone["STANDARD"], zone["DAYLIGHT"]
    r.check(len(std) == 1 and len(dst) <= 1, "I18",
            f"{tzid}: {len(std)} STANDARD and {len(dst)} DAYLIGHT observances")
    for obs in std + dst:
        names = [n for n, _ in obs]
        r.check("RDATE" not in names, "I18", f"{tzid}: RDATE in an observance")
        if dst:
            rules = [v for n, v in obs if n == "RRULE"]
            r.check(len(rules) == 1 and "FREQ=YEARLY" in rules[0], "I18",
                    f"{tzid}: an observance without one yearly RRULE")


# --- one file ----------------------------------------------------------------

def check_file(path, organizer, seen_uids):
    r = Report(path)
    with open(path, "rb") as f:
        raw = f.read()
    if CRLF not in raw and b"\n" in raw:
        # Stored with the local line ends (smtp-sink's dumps, a Maildir
        # written by a tool): the wire had CRLF. Mixed ends stay an error.
        raw = raw.replace(b"\n", CRLF)
    check_raw(r, raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    to_addr = check_headers(r, msg, raw)
    from_list = addresses(msg, "From")
    from_addr = from_list[0][1].lower() if from_list else ""
    check_parts(r, msg)
    check_files(r, msg)
    cal_parts = calendar_parts(msg)
    if cal_parts:
        inline = check_structure(r, msg, cal_parts)
        if inline is not None:
            check_calendar(r, inline.get_payload(decode=True), inline.get_param("method"),
                           to_addr, from_addr, organizer, seen_uids)
    return r


def expand(paths):
    for p in paths:
        if os.path.isdir(p):
            for n in sorted(os.listdir(p)):
                full = os.path.join(p, n)
                if os.path.isfile(full):
                    yield full
        else:
            yield p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--organizer", help="the ORGANIZER address every invite must name")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    passed = failed = 0
    seen_uids = {}
    for path in expand(args.paths):
        try:
            r = check_file(path, args.organizer, seen_uids)
        except OSError as e:
            r = Report(path)
            r.fail("read", str(e))
        for line in r.problems:
            print(line)
        if r.problems:
            failed += 1
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
