"""Stock OpenAI Agents SDK (Python, openai-agents) with its DEFAULT model (the Responses API), only the base URL
changed."""
import asyncio
import json

from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI

from harness import (API_KEY, BASE_URL, MODEL, QUESTION, WEATHER_FACT, Weather, astep, check_weather, finish,
                     get_weather, print_client, run_answer, streamed_answer)

print_client("openai-agents", "openai", note="default model: Responses API")
set_default_openai_client(AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0), use_for_tracing=False)
set_tracing_disabled(True)
plain_agent = Agent(name="Plain", instructions="Be brief.", model=MODEL)
weather_agent = Agent(
    name="Weather", instructions="Answer weather questions with the tool.", model=MODEL, tools=[function_tool(get_weather)]
)
structured_agent = Agent(
    name="Structured", instructions="Extract the city and its temperature.", model=MODEL, output_type=Weather
)
state = {}


async def plain():
    result = await Runner.run(plain_agent, "Hello!")
    state["last_response_id"] = result.last_response_id
    return f"{json.dumps(result.final_output)} (last_response_id {result.last_response_id})"


async def agent_loop(**options):
    return run_answer(await Runner.run(weather_agent, QUESTION, **options))


async def structured():
    return check_weather((await Runner.run(structured_agent, WEATHER_FACT)).final_output)


async def structured_streamed():
    result = Runner.run_streamed(structured_agent, WEATHER_FACT)
    async for _ in result.stream_events():
        pass
    return check_weather(result.final_output)


async def previous():
    if not state.get("last_response_id"):
        raise AssertionError("no last_response_id from the plain step")
    result = await Runner.run(plain_agent, "And again?", previous_response_id=state["last_response_id"])
    return f"{json.dumps(result.final_output)} (last_response_id {result.last_response_id})"


async def loop_previous_streamed():
    first = await Runner.run(weather_agent, QUESTION)
    run_answer(first)
    result = Runner.run_streamed(
        weather_agent, "Thanks! And what did you find?", previous_response_id=first.last_response_id
    )
    async for _ in result.stream_events():
        pass
    return f"final: {json.dumps(result.final_output)}"


async def multi_turn():
    first = await Runner.run(weather_agent, QUESTION)
    run_answer(first)
    follow_up = {"role": "user", "content": "And what is the weather in Rome?"}
    return run_answer(await Runner.run(weather_agent, [*first.to_input_list(), follow_up]))


async def main():
    await astep("plain (Agent without tools)", plain)
    await astep("agent loop (Runner.run, default Responses model)", agent_loop)
    await astep(
        "agent loop streamed (Runner.run_streamed)", lambda: streamed_answer(Runner.run_streamed(weather_agent, QUESTION))
    )
    await astep("structured output (output_type pydantic)", structured)
    await astep("structured output streamed (output_type, run_streamed)", structured_streamed)
    await astep("previous_response_id continuation (Runner.run previous_response_id)", previous)
    await astep(
        "agent loop chained in-run (auto_previous_response_id=True)", lambda: agent_loop(auto_previous_response_id=True)
    )
    await astep("previous_response_id continuation streamed, after a tool loop", loop_previous_streamed)
    await astep("multi-turn (result.to_input_list() + a new user message)", multi_turn)


asyncio.run(main())
finish()
