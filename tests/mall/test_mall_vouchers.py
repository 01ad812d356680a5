import re
import uuid

from app.mall import vouchers

CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


class TestCodes:
    def test_a_code_is_sixteen_crockford_symbols_in_four_groups(self):
        codes = {vouchers.new_code() for _ in range(2000)}
        assert len(codes) == 2000
        assert all(CODE.match(c) for c in codes)

    def test_eighty_bits(self):
        assert vouchers.BITS == 80 and vouchers.LENGTH == 16 and len(vouchers.ALPHABET) == 32

    def test_case_hyphens_spaces_and_look_alikes_are_forgiven(self):
        code = "0A1B-2C3D-4E5F-6G7H"
        assert vouchers.normalise("oa1b 2c3d-4e5f-6g7h") == "0A1B2C3D4E5F6G7H"
        assert vouchers.normalise("0AIB2C3D4E5F6G7H") == "0A1B2C3D4E5F6G7H"
        assert vouchers.normalise("0ALB2C3D4E5F6G7H") == "0A1B2C3D4E5F6G7H"
        assert vouchers.digest("0a1b2c3d4e5f6g7h") == vouchers.digest(code)

    def test_what_cannot_be_a_code(self):
        for bad in (
            "",
            "0A1B-2C3D-4E5F",
            "0A1B-2C3D-4E5F-6G7H-8J9K",
            "UUUU-UUUU-UUUU-UUUU",
            "0A1B-2C3D-4E5F-6G7%",
        ):
            assert vouchers.normalise(bad) is None
            assert vouchers.digest(bad) is None

    def test_sealed_codes_open_only_with_their_order(self):
        code, order_id = vouchers.new_code(), uuid.uuid4()
        sealed = vouchers.seal(code, order_id)
        assert len(sealed) == 10
        assert vouchers.unseal(sealed, order_id) == code
        assert vouchers.unseal(sealed, uuid.uuid4()) != code
