"""The retirement certificate (碳中和证明, SZ 19): a one-page PDF with a QR code to its public page.

The certificate states its ``content`` (number, tonnes, serial ranges, projects, methodologies,
beneficiary, purpose, date); the SHA-256 printed on it is over that content's canonical JSON, the
same hash ``GET /v1/public/certificates/{number}`` serves, so anyone holding the paper can check
it. The PDF is rendered with reportlab's invariant mode (no timestamps, fixed document id), so
the same content always gives the same bytes. Chinese text uses the CID font STSong-Light, which
every PDF reader has; ASCII text uses Helvetica.
"""

import hashlib
import io
from typing import Any

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

CJK = "STSong-Light"
LATIN = "Helvetica"
_registered = False

BENEFICIARY_KINDS = {"event": "活动 Event", "organization": "组织 Organisation", "person": "个人 Person"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK))
        _registered = True


def _font_for(text: str) -> str:
    return LATIN if text.isascii() else CJK


def _lines(text: str, font: str, size: float, width: float) -> list[str]:
    if font == LATIN:
        return simpleSplit(text, font, size, width) or [""]
    # CJK text has no spaces to break at: cut by measured width
    lines, line = [], ""
    for ch in text:
        if pdfmetrics.stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line]


def _qr(canvas: Canvas, url: str, x: float, y: float, size: float) -> None:
    """Draw the QR code of ``url`` as vector squares (no image library involved)."""
    code = segno.make(url, error="m")
    matrix = code.matrix
    n = len(matrix) + 8  # 4 modules of quiet zone on each side
    cell = size / n
    canvas.setFillColorRGB(0, 0, 0)
    for row, line in enumerate(matrix):
        for column, dark in enumerate(line):
            if dark:
                canvas.rect(x + (column + 4) * cell, y + size - (row + 5) * cell, cell, cell, stroke=0, fill=1)


def render(content: dict[str, Any], content_sha256: str) -> bytes:
    _fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=0)
    canvas.setTitle(f"CER retirement certificate {content['certificate_number']}")
    canvas.setAuthor("Carbon inclusion platform")
    width, height = A4
    left, right = 22 * mm, width - 22 * mm
    y = height - 30 * mm

    canvas.setFont(CJK, 20)
    canvas.drawCentredString(width / 2, y, "碳普惠核证减排量注销证明")
    y -= 9 * mm
    canvas.setFont(LATIN, 13)
    canvas.drawCentredString(width / 2, y, "Certificate of Retirement of Certified Emission Reductions")
    y -= 14 * mm

    beneficiary = content["beneficiary"]
    rows: list[tuple[str, str]] = [
        ("证书编号 Certificate No.", content["certificate_number"]),
        ("注销数量 Tonnes retired", f"{content['tonnes']} tCO2e"),
        ("受益方 Beneficiary", beneficiary["name"]),
        ("受益方类型 Beneficiary type", BENEFICIARY_KINDS.get(beneficiary["kind"], beneficiary["kind"])),
        ("用途 Purpose", content["purpose"]),
        ("注销方 Retired by", content["retired_by"]["name"]),
        ("注销日期 Date", content["retired_on"]),
    ]
    for p in content["projects"]:
        rows.append(("项目 Project", f"{p['name']} ({p['owner']}, {p['period_start']} – {p['period_end']})"))
        rows.append(("方法学 Methodology", ", ".join(p["methodologies"])))
    rows += [("序列号 Serial numbers", s) for s in content["serials"]]

    label_width = 58 * mm
    value_width = right - left - label_width
    for label, value in rows:
        canvas.setFont(CJK, 9.5)
        canvas.drawString(left, y, label)
        font = _font_for(value)
        lines = _lines(value, font, 10, value_width)
        canvas.setFont(font, 10)
        for line in lines:
            canvas.drawString(left + label_width, y, line)
            y -= 5.5 * mm
        y -= 1.5 * mm
        if y < 80 * mm:  # a very long list of serials: the rest is on the public page
            canvas.setFont(LATIN, 9)
            canvas.drawString(left + label_width, y, "(continued at the verification URL)")
            y -= 6 * mm
            break

    qr_size = 42 * mm
    qr_y = 22 * mm
    _qr(canvas, content["verification_url"], right - qr_size, qr_y, qr_size)
    text_y = qr_y + qr_size - 4 * mm
    canvas.setFont(CJK, 9.5)
    canvas.drawString(left, text_y, "验证 Verify this certificate:")
    canvas.setFont(LATIN, 8.5)
    for line in simpleSplit(content["verification_url"], LATIN, 8.5, right - left - qr_size - 6 * mm):
        text_y -= 5 * mm
        canvas.drawString(left, text_y, line)
    text_y -= 8 * mm
    canvas.setFont(CJK, 9.5)
    canvas.drawString(left, text_y, "内容哈希 SHA-256 of the content:")
    canvas.setFont("Courier", 7.5)
    text_y -= 5 * mm
    canvas.drawString(left, text_y, content_sha256)
    canvas.setFont(LATIN, 7)
    canvas.drawString(
        left, 14 * mm, "The hash is SHA-256 over the certificate content as canonical JSON (sorted keys, UTF-8)."
    )
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
