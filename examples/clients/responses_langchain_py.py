"""Stock langchain-openai ChatOpenAI(use_responses_api=True) against the platform, only base_url changed."""
import json
import os
import sys
import traceback
from importlib.metadata import version

from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

print(f"client: langchain-openai=={version('langchain-openai')} langchain-core=={version('langchain-core')} openai=={version('openai')}")
MODEL = os.environ.get("MODEL", "nova-micro")
COMMON = dict(model=MODEL, base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
llm = ChatOpenAI(use_responses_api=True, **COMMON)

failed = 0


def step(name, fn):
    global failed
    try:
        detail = fn()
        print(f"PASS {name}" + (f": {detail}" if detail else ""))
    except Exception as error:  # noqa: BLE001
        failed += 1
        print(f"FAIL {name}: {error!r}")
        traceback.print_exc(limit=4, file=sys.stdout)
        body = getattr(error, "body", None)
        if body is not None:
            print(f"     body: {json.dumps(body)}")


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city"""
    return json.dumps({"temp_c": 21, "city": city})


QUESTION = "What is the weather in Paris?"
STRUCTURED_PROMPT = "The weather in Paris is 21 degrees. Reply with the city and its temperature."


class Weather(BaseModel):
    city: str
    temp_c: float


def plain():
    msg = llm.invoke("Hello!")
    if not msg.text:
        raise AssertionError(f"empty: {msg!r}")
    return f"{json.dumps(msg.text)} (response id {msg.response_metadata.get('id')})"


def run_loop(model, stream=False):
    messages = [HumanMessage(QUESTION)]
    calls = 0
    for _ in range(5):
        if stream:
            msg = None
            for chunk in model.stream(messages):
                msg = chunk if msg is None else msg + chunk
        else:
            msg = model.invoke(messages)
        messages.append(msg)
        if not msg.tool_calls:
            if calls == 0:
                raise AssertionError(f"no tool call; answered {msg.text!r}")
            if not msg.text:
                raise AssertionError("empty final answer")
            return f"{calls} tool call(s), final: {json.dumps(msg.text)}"
        for call in msg.tool_calls:
            calls += 1
            print(f"     tool call {call['name']}({json.dumps(call['args'])})")
            messages.append(get_weather.invoke(call))
    raise AssertionError("no final answer after 5 turns")


def loop():
    return run_loop(llm.bind_tools([get_weather]))


def loop_streamed():
    return run_loop(llm.bind_tools([get_weather]), stream=True)


def loop_previous():
    return run_loop(ChatOpenAI(use_responses_api=True, use_previous_response_id=True, **COMMON).bind_tools([get_weather]))


def loop_v1():
    return run_loop(ChatOpenAI(use_responses_api=True, output_version="responses/v1", **COMMON).bind_tools([get_weather]))


def structured(method=None, **kwargs):
    def fn():
        runnable = llm.with_structured_output(Weather, **({"method": method} if method else {}), **kwargs)
        value = runnable.invoke(STRUCTURED_PROMPT)
        if kwargs.get("include_raw"):
            value = value["parsed"]
        if not isinstance(value, Weather):
            raise AssertionError(f"not a Weather: {value!r}")
        return value.model_dump_json()

    return fn


def structured_streamed():
    last = None
    for chunk in llm.with_structured_output(Weather).stream(STRUCTURED_PROMPT):
        last = chunk
    if not isinstance(last, Weather):
        raise AssertionError(f"not a Weather: {last!r}")
    return last.model_dump_json()


def previous_response_id():
    first = llm.invoke("My name is Ada.")
    rid = first.response_metadata.get("id")
    second = llm.invoke("What is my name?", previous_response_id=rid)
    if not second.text:
        raise AssertionError("empty answer")
    return f"{json.dumps(second.text)} (after {rid})"


def multi_turn():
    messages = [HumanMessage("My name is Ada.")]
    messages.append(llm.invoke(messages))
    messages.append(HumanMessage("What is my name?"))
    return json.dumps(llm.invoke(messages).text)


step("plain (invoke)", plain)
step("agent loop (bind_tools + invoke + ToolMessage)", loop)
step("agent loop streamed (bind_tools + stream)", loop_streamed)
step("agent loop (use_previous_response_id=True)", loop_previous)
step("agent loop (output_version='responses/v1')", loop_v1)
step("structured output (with_structured_output, default method)", structured())
step("structured output (with_structured_output method=json_schema, include_raw)", structured("json_schema", include_raw=True))
step("structured output (with_structured_output method=function_calling)", structured("function_calling"))
step("structured output streamed (with_structured_output.stream)", structured_streamed)
step("previous_response_id continuation (invoke previous_response_id=...)", previous_response_id)

step("multi-turn (AIMessage fed back)", multi_turn)

print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
sys.exit(1 if failed else 0)
