"""200 clients at once on one server: each gets every message once, in order."""

from livestream import create_app, serve
from livestream.tools.load import main, numbers, run_load


def test_200_clients_get_every_message_in_order():
    with serve(create_app(numbers, TESTING=True)) as server:
        result = run_load(server, clients=200, messages=20, interval=0.005)
    assert result["failed clients"] == 0
    assert result["received"] == 200 * 20
    assert result["lost"] == 0
    assert result["out of order"] == 0
    assert result["duplicated"] == 0


def test_the_load_command_prints_its_table(capsys):
    assert main(["--clients", "5", "--messages", "3", "--interval", "0"]) == 0
    header, rule, row = capsys.readouterr().out.splitlines()
    assert header.startswith("| clients | messages each |")
    assert row.startswith("| 5 | 3 | 0.0 | 15 | 0 | 0 | 0 | 0 |")
