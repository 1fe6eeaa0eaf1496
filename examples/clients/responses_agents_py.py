"""Stock OpenAI Agents SDK (Python, openai-agents) with its DEFAULT model (the Responses API), only the base URL changed."""
import asyncio
import json
import os
import sys
import traceback
from importlib.metadata import version

from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import BaseModel

print(f"client: openai-agents=={version('openai-agents')} openai=={version('openai')} (default model: Responses API)")
MODEL = os.environ.get("MODEL", "nova-micro")
client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
set_default_openai_client(client, use_for_tracing=False)
set_tracing_disabled(True)

failed = 0


async def step(name, fn):
    global failed
    try:
        detail = await fn()
        print(f"PASS {name}" + (f": {detail}" if detail else ""))
    except Exception as error:  # noqa: BLE001
        failed += 1
        print(f"FAIL {name}: {error!r}")
        traceback.print_exc(limit=4, file=sys.stdout)
        body = getattr(error, "body", None)
        if body is not None:
            print(f"     body: {json.dumps(body)}")


tool_calls = 0


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city"""
    global tool_calls
    tool_calls += 1
    print(f"     tool call get_weather({json.dumps({'city': city})})")
    return json.dumps({"temp_c": 21, "city": city})


QUESTION = "What is the weather in Paris?"


def weather_agent():
    return Agent(name="Weather", instructions="Answer weather questions with the tool.", model=MODEL, tools=[get_weather])


def check_final(result):
    if tool_calls == 0:
        raise AssertionError(f"the tool was never called; final output {result.final_output!r}")
    if not result.final_output:
        raise AssertionError("empty final output")
    return f"{tool_calls} tool call(s), final: {json.dumps(result.final_output)}"


class Weather(BaseModel):
    city: str
    temp_c: float


state = {}


async def plain():
    result = await Runner.run(Agent(name="Plain", instructions="Be brief.", model=MODEL), "Hello!")
    state["last_response_id"] = result.last_response_id
    return f"{json.dumps(result.final_output)} (last_response_id {result.last_response_id})"


async def loop():
    global tool_calls
    tool_calls = 0
    return check_final(await Runner.run(weather_agent(), QUESTION))


async def loop_streamed():
    global tool_calls
    tool_calls = 0
    result = Runner.run_streamed(weather_agent(), QUESTION)
    deltas = 0
    async for event in result.stream_events():
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            deltas += 1
    return f"{check_final(result)} ({deltas} text deltas)"


def structured_agent():
    return Agent(
        name="Structured",
        instructions="Extract the city and its temperature.",
        model=MODEL,
        output_type=Weather,
    )


async def structured():
    result = await Runner.run(structured_agent(), "The weather in Paris is 21 degrees.")
    if not isinstance(result.final_output, Weather):
        raise AssertionError(f"not a Weather: {result.final_output!r}")
    return result.final_output.model_dump_json()


async def structured_streamed():
    result = Runner.run_streamed(structured_agent(), "The weather in Paris is 21 degrees.")
    async for _ in result.stream_events():
        pass
    if not isinstance(result.final_output, Weather):
        raise AssertionError(f"not a Weather: {result.final_output!r}")
    return result.final_output.model_dump_json()


async def previous():
    if not state.get("last_response_id"):
        raise AssertionError("no last_response_id from the plain step")
    result = await Runner.run(
        Agent(name="Plain", instructions="Be brief.", model=MODEL),
        "And again?",
        previous_response_id=state["last_response_id"],
    )
    return f"{json.dumps(result.final_output)} (last_response_id {result.last_response_id})"


async def loop_previous_within_run():
    """A tool loop chained by previous_response_id inside the run (auto_previous_response_id)."""
    global tool_calls
    tool_calls = 0
    result = await Runner.run(weather_agent(), QUESTION, auto_previous_response_id=True)
    return check_final(result)


async def loop_previous_streamed():
    global tool_calls
    tool_calls = 0
    first = await Runner.run(weather_agent(), QUESTION)
    check_final(first)
    result = Runner.run_streamed(
        weather_agent(), "Thanks! And what did you find?", previous_response_id=first.last_response_id
    )
    async for _ in result.stream_events():
        pass
    return f"final: {json.dumps(result.final_output)}"


async def multi_turn():
    global tool_calls
    tool_calls = 0
    first = await Runner.run(weather_agent(), QUESTION)
    check_final(first)
    second = await Runner.run(
        weather_agent(), first.to_input_list() + [{"role": "user", "content": "And what is the weather in Rome?"}]
    )
    return f"final: {json.dumps(second.final_output)}"


async def main():
    await step("plain (Agent without tools)", plain)
    await step("agent loop (Runner.run, default Responses model)", loop)
    await step("agent loop streamed (Runner.run_streamed)", loop_streamed)
    await step("structured output (output_type pydantic)", structured)
    await step("structured output streamed (output_type, run_streamed)", structured_streamed)
    await step("previous_response_id continuation (Runner.run previous_response_id)", previous)
    await step("agent loop chained in-run (auto_previous_response_id=True)", loop_previous_within_run)
    await step("previous_response_id continuation streamed, after a tool loop", loop_previous_streamed)
    await step("multi-turn (result.to_input_list() + a new user message)", multi_turn)
    print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
    sys.exit(1 if failed else 0)


asyncio.run(main())
