from auth.keys import BASE62, KEY_LENGTH, format_key, generate_key, parse_key, random_base62


def test_generated_key_has_documented_shape() -> None:
    key = generate_key("live")
    assert key.raw.startswith("cg_live_")
    assert len(key.raw) == KEY_LENGTH == 8 + 12 + 32 + 6
    assert set(key.raw[8:]) <= set(BASE62)
    assert key.key_id == key.raw[8:20]
    assert key.display_prefix == key.raw[:12]


def test_test_mode_keys_have_their_own_prefix() -> None:
    assert generate_key("test").raw.startswith("cg_test_")


def test_generated_key_parses_back() -> None:
    key = generate_key()
    parsed = parse_key(key.raw)
    assert parsed is not None
    assert parsed.key_id == key.key_id
    assert parsed.mode == "live"


def test_a_single_typo_fails_the_checksum() -> None:
    raw = generate_key().raw
    position = 30
    replacement = "A" if raw[position] != "A" else "B"
    assert parse_key(raw[:position] + replacement + raw[position + 1 :]) is None


def test_wrong_prefix_length_or_alphabet_is_rejected() -> None:
    raw = generate_key().raw
    assert parse_key("cg_prod_" + raw[8:]) is None
    assert parse_key(raw + "x") is None
    assert parse_key(raw[:-1]) is None
    body = "cg_live_" + "A" * 11 + "-" + "B" * 32
    assert parse_key(format_key("live", "A" * 11 + "-", "B" * 32)) is None
    assert parse_key(body + "000000") is None


def test_repr_never_shows_the_secret() -> None:
    key = generate_key()
    assert key.raw[20:52] not in repr(key)


def test_random_base62_has_the_length_asked_and_uses_every_character() -> None:
    drawn = [random_base62(length) for length in (1, 12, 20, 32, 64) for _ in range(200)]
    assert [len(value) for value in drawn[::200]] == [1, 12, 20, 32, 64]
    assert set("".join(drawn)) == set(BASE62)
    assert len(set(drawn[800:])) == 200  # 64-character values never repeat
