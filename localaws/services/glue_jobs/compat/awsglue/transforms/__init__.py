"""``awsglue.transforms``: the class-style transforms Glue Studio generates, over DynamicFrame methods."""

from __future__ import annotations

from awsglue.dynamicframe import DynamicFrame


class ApplyMapping:
    @staticmethod
    def apply(frame: DynamicFrame, mappings, transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        return frame.apply_mapping(mappings, transformation_ctx=transformation_ctx)


class DropFields:
    @staticmethod
    def apply(frame: DynamicFrame, paths, transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        return frame.drop_fields(paths)


class SelectFields:
    @staticmethod
    def apply(frame: DynamicFrame, paths, transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        return frame.select_fields(paths)


class Filter:
    @staticmethod
    def apply(frame: DynamicFrame, f, transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        return frame.filter(f)


class ResolveChoice:
    @staticmethod
    def apply(frame: DynamicFrame, specs=None, choice: str = "", transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        return frame.resolveChoice(specs=specs, choice=choice, **kwargs)


class RenameField:
    @staticmethod
    def apply(frame: DynamicFrame, old_name: str, new_name: str, transformation_ctx: str = "", **kwargs) -> DynamicFrame:
        return frame.rename_field(old_name, new_name)


__all__ = ["ApplyMapping", "DropFields", "SelectFields", "Filter", "ResolveChoice", "RenameField"]
