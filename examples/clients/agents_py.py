"""Stock OpenAI Agents SDK (Python, openai-agents) on its chat-completions API, only the base URL changed."""
import asyncio
import json

from agents import (Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_default_openai_api,
                    set_default_openai_client, set_tracing_disabled)
from openai import AsyncOpenAI

from harness import (API_KEY, BASE_URL, MODEL, QUESTION, WEATHER_FACT, Weather, astep, check_weather, finish,
                     get_weather, print_client, run_answer, streamed_answer)

print_client("openai-agents", "openai")
client = AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0)
set_default_openai_client(client, use_for_tracing=False)
set_default_openai_api("chat_completions")
set_tracing_disabled(True)
weather_agent = Agent(
    name="Weather", instructions="Answer weather questions with the tool.", model=MODEL, tools=[function_tool(get_weather)]
)


async def plain():
    result = await Runner.run(Agent(name="Plain", instructions="Be brief.", model=MODEL), "Hello!")
    return json.dumps(result.final_output)


async def agent_loop(agent=weather_agent):
    return run_answer(await Runner.run(agent, QUESTION))


async def agent_loop_explicit_model():
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    return await agent_loop(weather_agent.clone(model=model))


async def structured():
    agent = Agent(name="Structured", instructions="Extract the city and its temperature.", model=MODEL, output_type=Weather)
    return check_weather((await Runner.run(agent, WEATHER_FACT)).final_output)


async def main():
    await astep("plain chat (Agent without tools)", plain)
    await astep("agent loop (set_default_openai_api('chat_completions'), Runner.run)", agent_loop)
    await astep("agent loop (explicit OpenAIChatCompletionsModel)", agent_loop_explicit_model)
    await astep("structured output (Agent output_type pydantic)", structured)
    await astep(
        "agent loop streamed (Runner.run_streamed)", lambda: streamed_answer(Runner.run_streamed(weather_agent, QUESTION))
    )


asyncio.run(main())
finish()
