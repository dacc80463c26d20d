"""`batch` sub-commands, `$` references and section rendering (docs/behaviour.md#rest-batch)."""

import asyncio

import pytest

from sipline.rest.batch import MAX_COMMANDS, SubFailure, SubSuccess, run_batch

TIME = {"start": 1.0, "finish": 2.0, "duration": 1.0, "processing": 0.5}
NOT_FOUND = SubFailure("ERROR_METHOD_NOT_FOUND", "Method not found!")
EMPTY = {"result": [], "result_error": [], "result_total": [], "result_next": [], "result_time": []}


class FakeCall:
    """Answers each method from a table (default: echo the params) and records what it got."""

    def __init__(self, outcomes=None):
        self.outcomes = outcomes or {}
        self.calls = []

    async def __call__(self, method, params):
        self.calls.append((method, params))
        return self.outcomes.get(method, SubSuccess(params, TIME))


def run(cmd, halt=None, outcomes=None):
    call = FakeCall(outcomes)
    return asyncio.run(run_batch(cmd, halt, call)), call


def params_of(cmd, outcomes):
    """The params the last command received after substitution."""
    _, call = run(cmd, outcomes=outcomes)
    return call.calls[-1][1]


# --- cmd shapes and rendering ---


def test_dict_cmd():
    outcomes = {"a.list": SubSuccess([1, 2], TIME, total=5, next=2), "bad": NOT_FOUND}
    result, call = run({"one": "A.List?x=1", "two": "bad", "three": "b.get"}, outcomes=outcomes)
    assert call.calls == [("a.list", {"x": "1"}), ("bad", {}), ("b.get", {})]
    assert result == {
        "result": {"one": [1, 2], "three": {}},
        "result_error": {"two": {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}},
        "result_total": {"one": 5},
        "result_next": {"one": 2},
        "result_time": {"one": TIME, "three": TIME},
    }
    assert list(result) == ["result", "result_error", "result_total", "result_next", "result_time"]


def test_list_cmd_renders_lists():
    result, _ = run(["a?x=1", "b?y=2"])
    assert result["result"] == [{"x": "1"}, {"y": "2"}]
    assert result["result_time"] == [TIME, TIME]
    assert result["result_error"] == result["result_total"] == result["result_next"] == []


def test_list_cmd_with_gaps_renders_a_map():
    result, _ = run(["a", "bad", "c"], outcomes={"bad": NOT_FOUND})
    assert result["result"] == {"0": {}, "2": {}}
    assert result["result_error"] == {"1": {"error": NOT_FOUND.error, "error_description": NOT_FOUND.description}}


def test_dict_keyed_0_to_n_is_a_list_as_in_php():
    assert run({"0": "a", "1": "b"})[0]["result"] == [{}, {}]
    assert run({"1": "a", "0": "b"})[0]["result"] == {"1": {}, "0": {}}
    assert run({0: "a", 1: "b"})[0]["result"] == [{}, {}]
    assert run({"00": "a", "-0": "b", "9223372036854775808": "c"})[0]["result"] == {
        "00": {},
        "-0": {},
        "9223372036854775808": {},
    }


@pytest.mark.parametrize("cmd", [None, "a?x=1", 5, True, {}, []])
def test_no_commands(cmd):
    result, call = run(cmd)
    assert result == EMPTY and call.calls == []


def test_query_decodes_like_php():
    result, call = run({"g": "voximplant.sip.get?FILTER[%3E%3DREG_ID]=5&FILTER[%25TITLE]=x+y"})
    assert call.calls == [("voximplant.sip.get", {"FILTER": {">=REG_ID": "5", "%TITLE": "x y"}})]
    _, call = run({"g": "m?FILTER%5B%3E%3DREG_ID%5D=5&a%20b=c%2Bd&e.f=1&ID[]=1&ID[]=2"})
    assert call.calls[0][1] == {"FILTER": {">=REG_ID": "5"}, "a_b": "c+d", "e_f": "1", "ID": ["1", "2"]}


def test_split_at_first_question_mark():
    _, call = run(["m?a=1?b=2", "m?", "?a=1"])
    assert call.calls == [("m", {"a": "1?b=2"}), ("m", {}), ("", {"a": "1"})]


def test_bad_utf8_in_a_command_is_its_own_error():
    result, call = run({"bad": "m?a=%ff", "good": "m?a=1"})
    assert result["result_error"]["bad"]["error"] == "ERROR_ARGUMENT"
    assert call.calls == [("m", {"a": "1"})]


# --- the 50-command limit ---


def test_only_first_50_run():
    result, call = run([f"m?n={n}" for n in range(53)])
    assert len(call.calls) == MAX_COMMANDS == 50
    assert result["result"] == [{"n": str(n)} for n in range(50)]
    exceeded = {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
    assert result["result_error"] == {"50": exceeded, "51": exceeded, "52": exceeded}


def test_non_strings_are_skipped_but_counted():
    cmd = {"n": None, "l": ["m"], "i": 7, **{f"c{n}": "m" for n in range(48)}, "late": "m"}
    result, call = run(cmd)
    assert len(call.calls) == 47
    assert "n" not in result["result"] and "n" not in result["result_error"]
    assert set(result["result_error"]) == {"c47", "late"}


# --- halt ---


@pytest.mark.parametrize("halt", [True, 1, "1", "Y", "false", "N", [0]])
def test_halt_stops_after_first_failure(halt):
    result, call = run({"a": "m", "b": "bad", "c": "m"}, halt, {"bad": NOT_FOUND})
    assert [method for method, _ in call.calls] == ["m", "bad"]
    assert list(result["result"]) == ["a"] and list(result["result_error"]) == ["b"]
    assert "c" not in result["result_time"]


@pytest.mark.parametrize("halt", [None, False, 0, 0.0, "0", "", []])
def test_no_halt_runs_everything(halt):
    result, call = run({"a": "bad", "b": "m"}, halt, {"bad": NOT_FOUND})
    assert len(call.calls) == 2 and list(result["result"]) == ["b"]


def test_halt_reports_the_first_excess_command_then_stops():
    result, _ = run(["m"] * 52, halt="Y")
    assert list(result["result_error"]) == ["50"]


def test_skipped_non_string_does_not_trigger_halt():
    _, call = run([None, "m"], halt=True)
    assert len(call.calls) == 1


# --- refused methods ---


@pytest.mark.parametrize("method", ["batch", "BATCH", "Batch?cmd[0]=m", "download", "upload"])
def test_nested_batch_refused_without_calling(method):
    result, call = run({"x": method, "y": "m"})
    assert result["result_error"] == {
        "x": {"error": "ERROR_BATCH_METHOD_NOT_ALLOWED", "error_description": "Method is not allowed for batch usage"}
    }
    assert [name for name, _ in call.calls] == ["m"]


# --- `$` substitution ---

ADD = {"add": SubSuccess({"ID": 7, "REG_ID": "15", "FLAGS": [3, 4], "ON": True, "OFF": False, "NIL": None}, TIME)}


def test_whole_value_becomes_the_node():
    params = params_of(
        {"add": "add", "s": "m?a=$result[add][ID]&b=$result[add][FLAGS]&c=$result[add]&d=$result[add][ON]"},
        ADD,
    )
    assert params == {"a": 7, "b": [3, 4], "c": ADD["add"].result, "d": True}


def test_embedded_reference_uses_php_string_form():
    cmd = {
        "add": "add",
        "s": "m?a=id+$result[add][ID]+reg+$result[add][REG_ID]&b=x+$result[add][FLAGS]"
        "&c=[+$result[add][ON]+]&d=[+$result[add][OFF]+]&e=x+$result[add][NIL]",
    }
    params = params_of(cmd, ADD)
    # NIL is null, which PHP's isset treats as absent: the walk stops at the `add` result, an array.
    assert params == {"a": "id 7 reg 15", "b": "x Array", "c": "[ 1 ]", "d": "[  ]", "e": "x Array"}


def test_embedded_reference_swallows_the_rest_of_its_run():
    params = params_of({"add": "add", "s": "m?a=<+$result[add][ID]>,+next"}, ADD)
    assert params == {"a": "< 7 next"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, "1.5"), (2.0, "2"), (-3, "-3"), (True, "1"), (False, ""), ("", ""), ({}, "Array"), ([], "Array")],
)
def test_php_string_forms(value, expected):
    params = params_of(["v", "m?a=<+$result[0]+>"], {"v": SubSuccess(value, TIME)})
    assert params == {"a": f"< {expected} >"}


def test_unknown_id_gives_the_whole_section():
    params = params_of({"add": "add", "s": "m?a=$result[nope][ID]&b=x+$result[nope]"}, ADD)
    assert params == {"a": {"add": ADD["add"].result}, "b": "x Array"}


def test_missing_step_keeps_the_node_reached():
    cmd = {"add": "add", "s": "m?a=$result[add][MISSING][ID]&b=$result[add][FLAGS][9]&c=$result[add][ID][0]"}
    assert params_of(cmd, ADD) == {"a": ADD["add"].result, "b": [3, 4], "c": 7}


def test_index_into_a_list_result():
    outcomes = {"get": SubSuccess([{"CONFIG_ID": 11}, {"CONFIG_ID": 12}], TIME, total=2)}
    cmd = {"get": "get", "s": "m?ID=$result[get][0][CONFIG_ID]&second=$result[get][1][CONFIG_ID]&bad=$result[get][01]"}
    params = params_of(cmd, outcomes)
    assert params == {"ID": 11, "second": 12, "bad": outcomes["get"].result}


def test_list_form_ids_and_integer_like_map_keys():
    outcomes = {"v": SubSuccess({"1": "one", 2: "two"}, TIME)}
    params = params_of(["v", "m?a=$result[0][1]&b=$result[0][2]&c=$result[1]"], outcomes)
    assert params == {"a": "one", "b": "two", "c": [outcomes["v"].result]}


def test_other_sections():
    outcomes = {"get": SubSuccess([], {"start": 1.25}, total=120, next=50), "bad": NOT_FOUND}
    cmd = {
        "get": "get",
        "bad": "bad",
        "s": "m?n=$next[get]&t=$total[get]&s=$time[get][start]&e=$error[bad][error]&d=at+$next[get]",
    }
    params = params_of(cmd, outcomes)
    assert params == {"n": 50, "t": 120, "s": 1.25, "e": "ERROR_METHOD_NOT_FOUND", "d": "at 50"}


def test_keyword_is_case_insensitive():
    params = params_of({"add": "add", "s": "m?a=$RESULT[add][ID]&b=$Result[add][REG_ID]"}, ADD)
    assert params == {"a": 7, "b": "15"}


def test_reference_run_ends_at_whitespace_and_needs_a_step():
    cmd = {
        "add": "add",
        "s": "m?a=$result[add][ID],more&b=$result[add][ID]%09tab&c=$result&d=$results&e=$result[]&f=cost+$5",
    }
    params = params_of(cmd, ADD)
    # The run swallows ",more", so `a` is still the whole value; `[]` is not a step.
    assert params == {"a": 7, "b": "7\ttab", "c": "$result", "d": "$results", "e": "$result[]", "f": "cost $5"}


def test_keys_and_nested_values():
    cmd = {"add": "add", "s": "m?$result[add]=1&F[$total][]=$result[add][ID]&F[x][y]=n+$result[add][ID]"}
    assert params_of(cmd, ADD) == {"$result": {"add": "1"}, "F": {"$total": [7], "x": {"y": "n 7"}}}


def test_references_see_only_earlier_commands():
    _, call = run({"s": "m?a=$result[add][ID]", "add": "add"}, outcomes=ADD)
    assert call.calls[0][1] == {"a": []}


def test_failed_command_has_no_result_to_reference():
    params = params_of({"bad": "bad", "s": "m?a=$result[bad][ID]"}, {"bad": NOT_FOUND})
    assert params == {"a": []}


def test_the_event_loop_serves_others_between_commands():
    """Commands that fail before any await (refused filters) still let the loop turn between them."""
    turns = []

    async def main():
        async def other():
            while True:
                turns.append(len(call.calls))
                await asyncio.sleep(0)

        ticker = asyncio.ensure_future(other())
        await asyncio.sleep(0)
        await run_batch(["a", "b", "c"], None, call)
        ticker.cancel()

    call = FakeCall()
    asyncio.run(main())
    assert {1, 2} <= set(turns)
