"""Bridges from dream-agent to other frameworks; each lives in its own subpackage and imports its framework only there.

    from dream_agent.integrations.langchain import ChatDream, DreamLLM, planner_tools
"""
