"""sam2elnet.export"""
