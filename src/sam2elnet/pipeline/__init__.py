"""sam2elnet.pipeline"""
