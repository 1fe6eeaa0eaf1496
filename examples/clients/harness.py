"""What the scripts in this folder share: the settings (BASE_URL, API_KEY, MODEL, EMBEDDING_MODEL), the weather
tool and the prompts, the checks, the agent loop, and the report: a PASS or FAIL line a step, then the count, and
exit 1 on a failure. It imports no client: its helpers for LangChain's and the Agents SDK's objects take them."""
import json
import operator
import os
import sys
import traceback
from functools import reduce
from importlib.metadata import version

from pydantic import BaseModel

BASE_URL = os.environ["BASE_URL"]
API_KEY = os.environ["API_KEY"]
MODEL = os.environ.get("MODEL", "nova-micro")
EMBEDDING_MODEL = os.environ.get("EMBEDDING_MODEL", "titan-embed-text-v2")

QUESTION = "What is the weather in Paris?"
WEATHER_FACT = "The weather in Paris is 21 degrees."
STRUCTURED_PROMPT = f"{WEATHER_FACT} Reply with the city and its temperature."


def get_weather(city: str) -> str:
    """Get the current weather for a city"""
    return json.dumps({"temp_c": 21, "city": city})


# get_weather for the clients that take a tool as JSON: its name and description, and its parameters' schema.
WEATHER_TOOL = {"name": "get_weather", "description": get_weather.__doc__}
WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def run_tool(name, arguments):
    """Prints a tool call the model made and answers it (arguments: the call's JSON string)."""
    print(f"     tool call {name}({arguments})")
    return get_weather(**json.loads(arguments))


class Weather(BaseModel):
    city: str
    temp_c: float


def check_weather(value):
    if not isinstance(value, Weather):
        raise AssertionError(f"not a Weather: {value!r}")
    return value.model_dump_json()


def answer(calls, text):
    """The end of an agent loop: the tool was called, then the model answered."""
    if calls == 0:
        raise AssertionError(f"no tool call; answered {text!r}")
    if not text:
        raise AssertionError("empty final answer")
    return f"{calls} tool call(s), final: {json.dumps(text)}"


def tool_loop(turn):
    """An agent loop of up to 5 turns. turn() asks the model once, answers the tool calls it made and returns
    (how many it made, the model's text); the loop ends at the first turn without a tool call."""
    calls = 0
    for _ in range(5):
        made, text = turn()
        if not made:
            return answer(calls, text)
        calls += made
    raise AssertionError("no final answer after 5 turns")


def langchain_loop(model, messages, tool, stream=False):
    """tool_loop for LangChain: `model` (tools bound) invoked, or streamed and its chunks added up; each tool call
    answered by tool.invoke(call), a ToolMessage."""

    def turn():
        ai = reduce(operator.add, model.stream(messages)) if stream else model.invoke(messages)
        if ai.invalid_tool_calls:
            raise AssertionError(f"invalid tool calls: {ai.invalid_tool_calls}")
        messages.append(ai)
        for call in ai.tool_calls:
            print(f"     tool call {call['name']}({json.dumps(call['args'])}) id={call['id']}")
            messages.append(tool.invoke(call))
        return len(ai.tool_calls), ai.text

    return tool_loop(turn)


def run_answer(result):
    """answer for an Agents SDK run result, its tool calls printed."""
    calls = [item.raw_item for item in result.new_items if item.type == "tool_call_item"]
    for call in calls:
        print(f"     tool call {call.name}({call.arguments})")
    return answer(len(calls), result.final_output)


async def streamed_answer(result):
    """run_answer for an Agents SDK Runner.run_streamed, once its events are read (the text deltas counted)."""
    deltas = [
        event
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    return f"{run_answer(result)} ({len(deltas)} text deltas)"


def print_client(*distributions, note=""):
    """The `client: ...` line: the versions of the packages a script runs."""
    versions = " ".join(f"{name}=={version(name)}" for name in distributions)
    print(f"client: {versions}" + (f" ({note})" if note else ""))


failed = 0


def step(name, fn):
    """Runs one step: PASS and what fn returned, or FAIL and the error."""
    try:
        _passed(name, fn())
    except Exception as error:  # noqa: BLE001
        _failed(name, error)


async def astep(name, fn):
    """step for an async fn."""
    try:
        _passed(name, await fn())
    except Exception as error:  # noqa: BLE001
        _failed(name, error)


def _passed(name, detail):
    print(f"PASS {name}" + (f": {detail}" if detail is not None else ""))


def _failed(name, error):
    global failed
    failed += 1
    print(f"FAIL {name}: {error!r}")
    traceback.print_exception(type(error), error, error.__traceback__, limit=4, file=sys.stdout)
    body = getattr(error, "body", None)
    if body is not None:
        print(f"     body: {json.dumps(body)}")


def finish():
    print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
    sys.exit(1 if failed else 0)
