"""Stock OpenAI Agents SDK (Python, openai-agents) on its chat-completions API, only the base URL changed."""
import asyncio
import json
import os
import sys
import traceback
from importlib.metadata import version

from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import BaseModel

print(f"client: openai-agents=={version('openai-agents')} openai=={version('openai')}")
MODEL = os.environ.get("MODEL", "nova-micro")
client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
set_default_openai_client(client, use_for_tracing=False)
set_default_openai_api("chat_completions")
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


class Weather(BaseModel):
    city: str
    temp_c: float


def weather_agent(model=MODEL):
    return Agent(name="Weather", instructions="Answer weather questions with the tool.", model=model, tools=[get_weather])


def check_final(result):
    if tool_calls == 0:
        raise AssertionError(f"the tool was never called; final output {result.final_output!r}")
    if not result.final_output:
        raise AssertionError("empty final output")
    return f"{tool_calls} tool call(s), final: {json.dumps(result.final_output)}"


async def plain():
    result = await Runner.run(Agent(name="Plain", instructions="Be brief.", model=MODEL), "Hello!")
    return json.dumps(result.final_output)


async def agent_loop():
    global tool_calls
    tool_calls = 0
    return check_final(await Runner.run(weather_agent(), QUESTION))


async def agent_loop_explicit_model():
    global tool_calls
    tool_calls = 0
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    return check_final(await Runner.run(weather_agent(model), QUESTION))


async def structured():
    agent = Agent(
        name="Structured", instructions="Extract the city and its temperature.", model=MODEL, output_type=Weather
    )
    result = await Runner.run(agent, "The weather in Paris is 21 degrees.")
    if not isinstance(result.final_output, Weather):
        raise AssertionError(f"not a Weather: {result.final_output!r}")
    return result.final_output.model_dump_json()


async def agent_loop_streamed():
    global tool_calls
    tool_calls = 0
    result = Runner.run_streamed(weather_agent(), QUESTION)
    deltas = 0
    async for event in result.stream_events():
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            deltas += 1
    return f"{check_final(result)} ({deltas} text deltas)"


async def main():
    await step("plain chat (Agent without tools)", plain)
    await step("agent loop (set_default_openai_api('chat_completions'), Runner.run)", agent_loop)
    await step("agent loop (explicit OpenAIChatCompletionsModel)", agent_loop_explicit_model)
    await step("structured output (Agent output_type pydantic)", structured)
    await step("agent loop streamed (Runner.run_streamed)", agent_loop_streamed)


asyncio.run(main())
print(f"{failed} step(s) FAILED" if failed else "all steps PASSED")
sys.exit(1 if failed else 0)
